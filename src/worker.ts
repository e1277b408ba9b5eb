import { existsSync } from 'node:fs';
import path from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Registry } from 'prom-client';
import { activityFailureInterceptors } from './platform/activity-metrics';
import { activityRequestId } from './platform/activity-request-id';
import type { Config } from './platform/config';
import type { Activities } from './activities';

/** Workflow interceptors: in every bundle (npm run build, the tests' global setup) and in a dev worker. */
export const WORKFLOW_INTERCEPTOR_MODULES = [require.resolve('./workflows/request-id-interceptor')];

/** The bundle `npm run build` leaves next to the compiled worker. */
const BUILT_BUNDLE = path.join(__dirname, 'workflow-bundle.js');

/**
 * The Temporal worker of task queue `operator-management`. It loads a prebuilt workflow bundle
 * (TEMPORAL_WORKFLOW_BUNDLE, or the one `npm run build` made); without one it bundles
 * src/workflows at start, which is what `npm run dev` does. With a registry, failed activity
 * attempts are counted in it (src/platform/activity-metrics.ts).
 */
export async function createWorker(
  config: Config['temporal'],
  activities: Activities,
  registry?: Registry,
): Promise<Worker> {
  const connection = await NativeConnection.connect({ address: config.address });
  const bundlePath = config.workflowBundlePath ?? (existsSync(BUILT_BUNDLE) ? BUILT_BUNDLE : undefined);
  return Worker.create({
    connection,
    namespace: config.namespace,
    taskQueue: config.taskQueue,
    activities,
    interceptors: {
      activity: [activityRequestId, ...(registry ? [activityFailureInterceptors(registry)] : [])],
      // Bundled in: a prebuilt bundle has it from src/scripts/build-workflow-bundle.ts.
      ...(bundlePath ? {} : { workflowModules: WORKFLOW_INTERCEPTOR_MODULES }),
    },
    ...(bundlePath ? { workflowBundle: { codePath: bundlePath } } : { workflowsPath: require.resolve('./workflows') }),
  });
}
