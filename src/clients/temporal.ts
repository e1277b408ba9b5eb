import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import type { Config } from '../config';

export async function createTemporalClient(config: Config['temporal']): Promise<Client> {
  const connection = await Connection.connect({ address: config.address });
  return new Client({ connection, namespace: config.namespace });
}

/** Whether a workflow with this id is running now (a closed or never-started one is not). */
export async function isWorkflowRunning(temporal: Client, workflowId: string): Promise<boolean> {
  const description = await temporal.workflow
    .getHandle(workflowId)
    .describe()
    .catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    });
  return description?.status.name === 'RUNNING';
}

/** Whether a workflow with this id exists (running or closed); other failures are thrown. */
export async function workflowExists(temporal: Client, workflowId: string): Promise<boolean> {
  return temporal.workflow
    .getHandle(workflowId)
    .describe()
    .then(
      () => true,
      (err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      },
    );
}
