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
import { withTimeout, DEFAULT_CHECK_TIMEOUT_MS, type ReadinessChecks } from './readiness';

/**
 * The health-ingestion process: the durable consumer of `connector.health.>` that keeps the
 * Redis health cache true (SPEC §3.3, §3.4), plus the health log's retention, plus its own ops
 * listener (HEALTH_OPS_PORT). Run as many replicas as the report rate needs. SIGTERM finishes
 * the batch in hand, hands the rest back to JetStream and exits 0.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'operator-management-health');
  const db = createPool(config.postgres);
  db.on('error', (err) => log.warn({ err: err.message }, 'idle PostgreSQL client failed'));
  const redis = createRedis(config.redis);
  redis.on('error', (err: Error) => log.warn({ err: err.message }, 'Redis connection error'));
  const nats = await connectNats(config.nats, 'operator-management-health');
  // operator.health events go to the service's event stream: make sure it exists.
  await ensureStream(nats, config.nats.stream);
  const temporal = await createTemporalClient(config.temporal);

  const registry = createMetricsRegistry();
  const metrics = healthMetrics(registry);
  const pipeline = new HealthPipeline({ db, redis, nats, temporal, metrics });
  const consumer = new HealthConsumer({ nats, pipeline, metrics, log }, config.health);

  let stopping = false;
  const bounded = (check: () => Promise<unknown>) => async () => {
    await withTimeout(check(), DEFAULT_CHECK_TIMEOUT_MS);
  };
  const checks: ReadinessChecks = {
    postgres: bounded(() => db.query('SELECT 1')),
    redis: bounded(async () => {
      if ((await redis.ping()) !== 'PONG') throw new Error('unexpected PING answer');
    }),
    nats: bounded(() => nats.flush()),
    temporal: bounded(() => temporal.workflowService.getSystemInfo({})),
    consumer: async () => {
      if (!consumer.connected) throw new Error('not consuming');
    },
    process: async () => {
      if (stopping) throw new Error('shutting down');
    },
  };
  const opsServer: Server = createServer(createOpsApp(checks, registry).callback());
  await new Promise<void>((resolve, reject) => {
    opsServer.once('error', reject);
    opsServer.listen(config.health.opsPort, config.http.host, resolve);
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
  const timer = setInterval(() => void housekeeping(), config.postgres.housekeepingIntervalS * 1000);

  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    setTimeout(() => {
      log.error('shutdown did not finish within 20 s; exiting');
      process.exit(1);
    }, 20_000).unref();
    clearInterval(timer);
    await consumer.stop();
    await new Promise<void>((resolve) => opsServer.close(() => resolve()));
    await Promise.allSettled([nats.drain(), temporal.connection.close(), db.end(), redis.quit()]);
    log.info('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
