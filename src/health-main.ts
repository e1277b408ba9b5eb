import { createServer, type Server } from 'node:http';
import { createOpsApp } from './api/ops-app';
import { connectNats, ensureStream } from './clients/nats';
import { createPool } from './clients/postgres';
import { createRedis } from './clients/redis';
import { createTemporalClient } from './clients/temporal';
import { loadConfig } from './config';
import { maintainHealthLog } from './db/health-log';
import { HealthConsumer } from './health/consumer';
import { healthMetrics } from './health/metrics';
import { HealthPipeline } from './health/pipeline';
import { createLogger } from './logger';
import { createMetricsRegistry } from './metrics';
import { createReadinessChecks, type ReadinessChecks } from './readiness';
import { exitOnSignal } from './shutdown';

/**
 * The health-ingestion process: the durable consumer of `connector.health.>` that keeps the
 * Redis health cache true (SPEC §3.3, §3.4), plus the health log's retention, plus its own ops
 * listener (HEALTH_OPS_PORT). Run as many replicas as the report rate needs. SIGTERM finishes
 * the batch in hand, hands the rest back to JetStream and exits 0.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'operator-management-health');
  const db = createPool(config.postgres, log);
  const redis = createRedis(config.redis);
  redis.on('error', (err: Error) => log.warn({ err: err.message }, 'Redis connection error'));
  const nats = await connectNats(config.nats, 'operator-management-health');
  // operator.health events go to the service's event stream: make sure it exists.
  for (const warning of await ensureStream(nats, config.nats.stream)) {
    log.error({ stream: config.nats.stream }, `event stream misconfigured: ${warning}`);
  }
  const temporal = await createTemporalClient(config.temporal);

  const registry = createMetricsRegistry();
  const metrics = healthMetrics(registry);
  const pipeline = new HealthPipeline({ db, redis, nats, temporal, metrics });
  const consumer = new HealthConsumer({ nats, pipeline, metrics, log }, config.health);

  let timer: NodeJS.Timeout | undefined;
  let opsServer: Server | undefined;
  const signals = exitOnSignal(log, async () => {
    clearInterval(timer);
    await consumer.stop();
    await new Promise<void>((resolve) => (opsServer ? opsServer.close(() => resolve()) : resolve()));
    await Promise.allSettled([nats.drain(), temporal.connection.close(), db.end(), redis.quit()]);
  });

  const checks: ReadinessChecks = {
    ...createReadinessChecks({ db, redis, nats, temporal }),
    consumer: async () => {
      if (!consumer.connected) throw new Error('not consuming');
    },
    process: async () => {
      if (signals.stopping) throw new Error('shutting down');
    },
  };
  opsServer = createServer(createOpsApp(checks, registry).callback());
  const server = opsServer;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.health.opsPort, config.http.host, resolve);
  });
  log.info({ host: config.http.host, port: config.health.opsPort }, 'health ops endpoints listening');

  await consumer.start();
  log.info({ stream: config.health.stream, consumer: config.health.consumer }, 'health ingestion consuming');

  const housekeeping = () =>
    maintainHealthLog(db, config.postgres.healthLogRetentionDays).then(
      (dropped) => log.info({ healthPartitionsDropped: dropped }, 'health log maintained'),
      (err: unknown) => log.warn({ err: (err as Error).message }, 'health log maintenance failed; next run retries'),
    );
  void housekeeping();
  timer = setInterval(() => void housekeeping(), config.postgres.housekeepingIntervalS * 1000);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
