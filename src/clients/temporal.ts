import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import type { Config } from '../platform/config';

export async function createTemporalClient(config: Config['temporal']): Promise<Client> {
  const connection = await Connection.connect({ address: config.address });
  return new Client({ connection, namespace: config.namespace });
}

/** Runs Temporal calls under a deadline: a Temporal that does not answer fails them in time. */
export function withinDeadline<T>(temporal: Client, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  return temporal.withDeadline(Date.now() + timeoutMs, fn);
}

interface RunningRun {
  runId: string;
  /** The `startId` its start gave it (its memo), when it carries one. */
  startId?: string;
}

/** The running workflow with this id; null when none runs. Throws when Temporal fails. */
export async function runningRun(temporal: Client, workflowId: string, timeoutMs = 5_000): Promise<RunningRun | null> {
  try {
    const description = await withinDeadline(temporal, timeoutMs, () =>
      temporal.workflow.getHandle(workflowId).describe(),
    );
    if (description.status.name !== 'RUNNING') return null;
    const startId = description.memo?.startId;
    return typeof startId === 'string' ? { runId: description.runId, startId } : { runId: description.runId };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

/** Whether a workflow with this id is running now (a closed or never-started one is not). */
export async function isWorkflowRunning(temporal: Client, workflowId: string): Promise<boolean> {
  return (await runningRun(temporal, workflowId)) !== null;
}
