import { createActivities } from './activities';
import { createAdminApp } from './api/admin-app';
import { createInternalApp, createInternalServer } from './api/internal-app';
import { runHousekeeping } from './db/housekeeping';
import { instrumentOutbox } from './events/outbox-metrics';
import { healthMetrics } from './health/metrics';
import { HealthPipeline } from './health/pipeline';
import { runProcess } from './platform/process';
import { installTemporalRuntime } from './platform/temporal-runtime';
import { openResources } from './platform/resources';
import { createAdminServices, createInternalServices } from './services';
import { sweepStagedCredentials } from './services/credentials-staging';
import { createWorker } from './worker';

/**
 * The service process; PROCESS_ROLES chooses its work: `api` (admin and internal listeners),
 * `worker` (Temporal worker, outbox relay, housekeeping). Health ingestion is src/health-main.ts.
 */
runProcess({
  opsPort: (config) => config.http.opsPort,
  roles: (config) => config.roles,
  open: openResources,
  async start({ config, log, clients: resources, registry, onStop, listen }) {
    if (config.roles.includes('api')) {
      const services = createAdminServices(resources, config, log, registry);
      services.routingExplain.start();
      onStop(async () => services.routingExplain.stop());
      // POST /v1/internal/operators/{id}/health runs the health process's pipeline in this one.
      const metrics = healthMetrics(registry);
      const pipeline = HealthPipeline.configured(config, resources, metrics, log);
      pipeline.start();
      onStop(async () => pipeline.stop());
      const admin = createAdminApp({ config, db: resources.db, log, registry, ...services });
      await listen(admin.callback(), config.http.adminPort, 'admin API');
      const internalServices = createInternalServices(resources, config, log);
      internalServices.credentials.start();
      onStop(async () => internalServices.credentials.stop());
      const internalApp = createInternalApp({
        registry,
        config,
        log,
        ...internalServices,
        health: { pipeline, metrics, log },
      });
      const internal = createInternalServer(internalApp, config.internalTls, {
        log,
        reloadMs: config.http.internalTlsReloadMs,
      });
      await listen(internal, config.http.internalPort, 'internal API');
    }

    if (config.roles.includes('worker')) {
      await installTemporalRuntime(log, registry, config.temporal.metricsPort);
      const worker = await createWorker(config.temporal, createActivities(resources), registry);
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
      log.info(
        { taskQueue: config.temporal.taskQueue, namespace: config.temporal.namespace },
        'Temporal worker running',
      );
      onStop(async () => {
        clearInterval(housekeeping);
        worker.shutdown();
        await running;
        await worker.connection?.close();
      });
    }
  },
});
