import { NativeConnection, Worker } from '@temporalio/worker';
import type { Config } from './config';
import type { Activities } from './activities';

/**
 * The Temporal worker of task queue `operator-management`. With TEMPORAL_WORKFLOW_BUNDLE set
 * (production, tests) it loads a prebuilt bundle; otherwise it bundles src/workflows at start.
 */
export async function createWorker(config: Config['temporal'], activities: Activities): Promise<Worker> {
  const connection = await NativeConnection.connect({ address: config.address });
  return Worker.create({
    connection,
    namespace: config.namespace,
    taskQueue: config.taskQueue,
    activities,
    ...(config.workflowBundlePath
      ? { workflowBundle: { codePath: config.workflowBundlePath } }
      : { workflowsPath: require.resolve('./workflows') }),
  });
}
