import { createServer, type Server } from 'node:http';
import { createActivities } from './activities';
import { createAdminApp } from './api/admin-app';
import { createInternalApp, createInternalServer } from './api/internal-app';
import { createOpsApp } from './api/ops-app';
import { loadConfig } from './config';
import { runHousekeeping } from './db/housekeeping';
import { healthMetrics } from './health/metrics';
import { HealthPipeline } from './health/pipeline';
import { createLogger, type Logger } from './logger';
import { createMetricsRegistry } from './metrics';
import { createReadinessChecks } from './readiness';
import { instrumentOutbox } from './events/outbox-metrics';
import { openResources } from './resources';
import { exitOnSignal } from './shutdown';
import { CredentialsService } from './services/credentials';
import { DrainService } from './services/drain';
import { OperatorService } from './services/operators';
import { sweepStagedCredentials } from './services/staging-sweep';
import { createWorker } from './worker';
import { HealthService } from './services/health';

/**
 * One entry point for every process role (PROCESS_ROLES): `api` (admin and internal listeners),
 * `worker` (Temporal worker and outbox relay); health ingestion is src/health-main.ts. The ops listener
 * (/healthz, /readyz, /metrics) runs in every process. SIGTERM drains and exits.
 */

function listen(server: Server, host: string, port: number, what: string, log: Logger): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      log.info({ host, port }, `${what} listening`);
      resolve(server);
    });
  });
}

const closeServer = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const resources = await openResources(config, log);
  const stops: Array<() => Promise<void>> = [];
  const { host } = config.http;
  let stopOps: (() => Promise<void>) | undefined;
  const signals = exitOnSignal(log, async () => {
    await Promise.allSettled(stops.map((stop) => stop()));
    await stopOps?.();
    await resources.close();
  });

  const checks = {
    ...createReadinessChecks(resources),
    // Load balancers stop sending work as soon as a drain begins.
    process: async () => {
      if (signals.stopping) throw new Error('shutting down');
    },
  };
  const registry = createMetricsRegistry();
  const ops = createOpsApp(checks, registry);
  const opsServer = await listen(createServer(ops.callback()), host, config.http.opsPort, 'ops endpoints', log);
  stopOps = () => closeServer(opsServer);

  if (config.roles.includes('api')) {
    const operators = new OperatorService({ ...resources, config: config.temporal, log });
    const drain = new DrainService({ temporal: resources.temporal, operators, config: config.temporal, log });
    // POST /v1/internal/operators/{id}/health runs the health process's pipeline in this one.
    const metrics = healthMetrics(registry);
    const pipeline = new HealthPipeline({ ...resources, metrics });
    const admin = createAdminApp({
      config,
      db: resources.db,
      log,
      operators,
      drain,
      health: new HealthService({ db: resources.db, cache: pipeline.healthCache }),
    });
    const adminServer = await listen(createServer(admin.callback()), host, config.http.adminPort, 'admin API', log);
    const credentials = new CredentialsService({
      db: resources.db,
      kv: resources.kv,
      log,
      cacheTtlMs: (config.vault.credentialsCacheTtlS ?? 0) * 1000,
    });
    const health = { pipeline, metrics, log };
    const internalApp = createInternalApp({ config, log, operators, credentials, health });
    const reload = { log, reloadMs: config.http.internalTlsReloadMs };
    const internal = createInternalServer(internalApp, config.internalTls, reload);
    const internalServer = await listen(internal, host, config.http.internalPort, 'internal API', log);
    stops.push(
      () => closeServer(adminServer),
      () => closeServer(internalServer),
    );
  }

  if (config.roles.includes('worker')) {
    const worker = await createWorker(config.temporal, createActivities(resources));
    const running = worker.run();
    running.catch((err: unknown) => {
      log.fatal({ err: (err as Error).message }, 'Temporal worker stopped');
      process.exit(1);
    });
    instrumentOutbox(registry, resources.relay);
    resources.relay.start(config.nats.outboxPollMs);
    const housekeeping = setInterval(() => {
      Promise.all([
        runHousekeeping(resources.db, config.postgres.healthLogRetentionDays),
        sweepStagedCredentials(resources.kv, resources.temporal),
      ]).then(
        ([result, swept]) => log.info({ ...result, stagedSecretsSwept: swept.length }, 'housekeeping done'),
        (err: unknown) => log.warn({ err: (err as Error).message }, 'housekeeping failed; next run retries'),
      );
    }, config.postgres.housekeepingIntervalS * 1000);
    log.info({ taskQueue: config.temporal.taskQueue, namespace: config.temporal.namespace }, 'Temporal worker running');
    stops.push(async () => {
      clearInterval(housekeeping);
      worker.shutdown();
      await running;
      await worker.connection?.close();
    });
  }
}

main().catch((err: unknown) => {
  // A ConfigError names the variable; anything else is a start-up failure of a dependency.
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
