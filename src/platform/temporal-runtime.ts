import { once } from 'node:events';
import { createServer } from 'node:net';
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Registry } from 'prom-client';
import type { Logger } from './logger';
import { addTextMetrics } from './metrics';

/**
 * The Temporal SDK's runtime for a worker process: its log lines (the SDK's own and its native
 * core's) go through the process's pino logger, so every line of the process is one JSON format
 * and passes the same redaction; its own metrics (workflows completed or failed by type, activity
 * executions, polls, slots, RPCs) come from its Prometheus exporter on a loopback port and are
 * served on the process's /metrics beside prom-client's.
 */

const PINO_LEVEL: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * The SDK logs at the process's level (LOG_LEVEL), at most DEBUG: at TRACE it logs whole
 * activations and tasks (payloads, headers, task tokens). pino's `fatal` and `silent` keep errors.
 */
function temporalLevelOf(level: string): LogLevel {
  const byPino: Record<string, LogLevel> = { trace: 'DEBUG', debug: 'DEBUG', info: 'INFO', warn: 'WARN' };
  return byPino[level] ?? 'ERROR';
}

/** A loopback port free right now: the exporter must be told one before it binds. */
async function freeLoopbackPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** Installs the runtime once per process, before the first worker connection. */
export async function installTemporalRuntime(log: Logger, registry: Registry, metricsPort = 0): Promise<void> {
  const port = metricsPort || (await freeLoopbackPort());
  const temporalLog = log.child({ component: 'temporal' });
  Runtime.install({
    logger: new DefaultLogger(temporalLevelOf(log.level), (entry) => {
      temporalLog[PINO_LEVEL[entry.level]]({ ...entry.meta }, entry.message);
    }),
    telemetryOptions: {
      logging: { forward: {}, filter: { core: 'WARN', other: 'ERROR' } },
      metrics: {
        prometheus: { bindAddress: `127.0.0.1:${port}`, countersTotalSuffix: true, useSecondsForDurations: true },
      },
    },
  });
  addTextMetrics(registry, async () => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) });
    return res.ok ? await res.text() : '';
  });
}
