import { createServer, type RequestListener, type Server } from 'node:http';
import { applyHttpLimits, CONNECTIONS_CHECKING_INTERVAL_MS } from './http-limits';
import type { Registry } from 'prom-client';
import { createOpsApp } from '../api/shared/ops-app';
import { loadConfig, type Config } from './config';
import { createLogger, logDestination, type Logger } from './logger';
import { createMetricsRegistry } from './metrics';
import { requiredChecks, type ReadinessChecks, type ReadinessRole } from './readiness';
import { exitOnSignal } from './shutdown';

/**
 * How every process starts and stops (src/main.ts, src/health-main.ts): configuration, logger,
 * clients, the ops listener (/healthz, /readyz, /metrics), the process's own work, and on
 * SIGTERM the reverse order. A start-up failure prints its reason (a ConfigError names the
 * variable) and exits 1.
 */

export interface ProcessContext<C> {
  config: Config;
  log: Logger;
  clients: C;
  registry: Registry;
  /** Readiness checks beyond the clients' own; read on every /readyz. */
  checks: ReadinessChecks;
  /** Runs at shutdown, before the clients close; stops run in parallel. */
  onStop(stop: () => Promise<void>): void;
  /** Listens on host:port; the server closes at shutdown. */
  listen(handler: RequestListener | Server, port: number, what: string): Promise<Server>;
}

export interface ProcessSpec<C extends { checks: ReadinessChecks; close(): Promise<void> }> {
  name?: string;
  opsPort(config: Config): number;
  /** The roles this process plays: what /readyz requires (REQUIRED_BY_ROLE). */
  roles(config: Config): readonly ReadinessRole[];
  open(config: Config, log: Logger): Promise<C>;
  start(ctx: ProcessContext<C>): Promise<void>;
}

export function runProcess<C extends { checks: ReadinessChecks; close(): Promise<void> }>(spec: ProcessSpec<C>): void {
  start(spec).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}

async function start<C extends { checks: ReadinessChecks; close(): Promise<void> }>(spec: ProcessSpec<C>) {
  const config = loadConfig();
  const log = createLogger(config.logLevel, spec.name, logDestination(1));
  const clients = await spec.open(config, log);
  const stops: Array<() => Promise<void>> = [];
  const servers: Server[] = [];
  const signals = exitOnSignal(log, async () => {
    await Promise.allSettled(stops.map((stop) => stop()));
    await Promise.allSettled(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    await clients.close();
  });

  const listen = (handler: RequestListener | Server, port: number, what: string): Promise<Server> => {
    const server = applyHttpLimits(
      typeof handler === 'function'
        ? createServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS }, handler)
        : handler,
      config.http.limits,
    );
    const { host } = config.http;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        log.info({ host, port }, `${what} listening`);
        servers.push(server);
        resolve(server);
      });
    });
  };

  const checks: ReadinessChecks = {
    ...clients.checks,
    // Load balancers stop sending work as soon as a drain begins.
    process: async () => {
      if (signals.stopping) throw new Error('shutting down');
    },
  };
  const registry = createMetricsRegistry();
  await listen(
    createOpsApp(checks, registry, requiredChecks(spec.roles(config))).callback(),
    spec.opsPort(config),
    'ops endpoints',
  );
  await spec.start({ config, log, clients, registry, checks, onStop: (stop) => stops.push(stop), listen });
}
