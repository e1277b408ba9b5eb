import { maintainHealthLog } from './db/health-log';
import { HealthConsumer } from './health/consumer';
import { healthMetrics } from './health/metrics';
import { HealthPipeline } from './health/pipeline';
import { runProcess } from './platform/process';
import { openClients } from './platform/resources';

/**
 * The health-ingestion process (README "Health ingestion"): the durable consumer of
 * `connector.health.>` that keeps the Redis health cache true, plus the health log's retention,
 * plus its own ops listener (HEALTH_OPS_PORT). Run as many replicas as the report rate needs.
 * SIGTERM finishes the batch in hand, hands the rest back to JetStream and exits 0.
 */
const NAME = 'operator-management-health';

runProcess({
  name: NAME,
  opsPort: (config) => config.health.opsPort,
  roles: () => ['health'],
  // operator.health events go to the service's event stream: openClients makes sure it exists.
  open: (config, log) => openClients(config, log, NAME),
  async start({ config, log, clients, registry, checks, onStop }) {
    const metrics = healthMetrics(registry);
    const pipeline = HealthPipeline.configured(config, clients, metrics, log);
    pipeline.start();
    onStop(async () => pipeline.stop());
    const consumer = new HealthConsumer({ nats: clients.nats, pipeline, metrics, log }, config.health);
    checks.consumer = async () => {
      if (!consumer.connected) throw new Error('not consuming');
    };
    onStop(() => consumer.stop());

    await consumer.start();
    log.info({ stream: config.health.stream, consumer: config.health.consumer }, 'health ingestion consuming');

    const housekeeping = () =>
      maintainHealthLog(clients.db, config.postgres.healthLogRetentionDays).then(
        (dropped) => log.info({ healthPartitionsDropped: dropped }, 'health log maintained'),
        (err: unknown) => log.warn({ err: (err as Error).message }, 'health log maintenance failed; next run retries'),
      );
    void housekeeping();
    const timer = setInterval(() => void housekeeping(), config.postgres.housekeepingIntervalS * 1000);
    onStop(async () => clearInterval(timer));
  },
});
