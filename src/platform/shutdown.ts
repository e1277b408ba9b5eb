import type { Logger } from './logger';

const DEADLINE_MS = 20_000;

/**
 * On SIGTERM or SIGINT, runs `stop` once and exits 0; a hung dependency cannot keep a stopping
 * process alive past 20 s. `stopping` turns true at the signal, so /readyz can fail at once and
 * load balancers stop sending work while the process drains.
 */
export function exitOnSignal(log: Logger, stop: () => Promise<void>): { readonly stopping: boolean } {
  const state = { stopping: false };
  const shutdown = async (signal: string) => {
    if (state.stopping) return;
    state.stopping = true;
    log.info({ signal }, 'shutting down');
    setTimeout(() => {
      log.error(`shutdown did not finish within ${DEADLINE_MS / 1000} s; exiting`);
      process.exit(1);
    }, DEADLINE_MS).unref();
    await stop();
    log.info('stopped');
    // Every gathered line out, in order, before the exit (pino's exit flush skips a batch still
    // being written: lines could come out after 'stopped').
    await new Promise<void>((resolve) => log.flush(() => resolve()));
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  return state;
}
