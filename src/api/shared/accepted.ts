import type { Context } from 'koa';
import { Operator } from '../../domain/schemas';
import type { WorkflowStarted } from '../../services/shared/workflow-start';
import { z } from './http';

/** The 202 of every route that starts a workflow: the operator as its first step left it, and where to watch. */
export const WorkflowAccepted = z
  .object({
    operator: Operator,
    workflowId: z.string(),
    runId: z.string().nullable(),
    workflowUrl: z.url(),
  })
  .openapi('WorkflowAccepted');
export type WorkflowAccepted = z.infer<typeof WorkflowAccepted>;

export function sendAccepted(ctx: Context, started: WorkflowStarted, location: string): void {
  ctx.status = 202;
  ctx.set('Location', location);
  ctx.body = {
    operator: started.operator,
    workflowId: started.workflowId,
    runId: started.runId,
    workflowUrl: started.workflowUrl,
  } satisfies WorkflowAccepted;
}
