import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import { loadConfig } from '../../src/platform/config';
import { createLogger } from '../../src/platform/logger';
import { openResources } from '../../src/platform/resources';
import { createWorker } from '../../src/worker';

/**
 * A worker as its own process (run with tsx), so a test can SIGKILL it mid-workflow and start
 * another on the same task queue (TEMPORAL_TASK_QUEUE). Everything it logs (the service's pino
 * lines at LOG_LEVEL, the Temporal SDK's at DEBUG) goes to stdout/stderr for the test to search.
 */
async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('DEBUG') });
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'test-worker');
  const resources = await openResources(config, log);
  const worker = await createWorker(config.temporal, createActivities(resources));
  resources.relay.start(200);
  const running = worker.run();
  process.stdout.write(`worker-ready ${config.temporal.taskQueue}\n`);
  process.once('SIGTERM', () => worker.shutdown());
  await running;
  await resources.close();
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
