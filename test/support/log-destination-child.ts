import { createLogger, logDestination } from '../../src/platform/logger';

/**
 * A process logging through the service's destination (test/platform/log-destination.test.ts):
 * one line, then it stays up for a while (`stay`) or dies of an uncaught error (`throw`).
 */
const log = createLogger('info', 'log-destination-child', logDestination(1));
log.info({ marker: 'first line' }, 'written');
if (process.argv[2] === 'throw') {
  setImmediate(() => {
    throw new Error('uncaught on purpose');
  });
} else {
  setTimeout(() => undefined, 10_000);
}
