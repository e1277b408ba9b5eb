import type { NatsConnection, Subscription } from 'nats';
import type { Logger } from '../logger';

/** Inbound health reports from smpp-connector (SPEC §3.3). */
export const CONNECTOR_HEALTH_SUBJECT = 'connector.health.*';

/**
 * The health-ingestion worker's place in the process: it subscribes to the connectors' reports
 * as a queue group (so replicas share them). Validation, the Redis cache, the health log and
 * forwarding to waiting workflows arrive with the health-ingestion issue; until then reports
 * are only counted.
 */
export class HealthWorker {
  private subscription?: Subscription;
  received = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.subscription = this.nc.subscribe(CONNECTOR_HEALTH_SUBJECT, {
      queue: 'operator-management-health',
      callback: (err) => {
        if (err) this.log.warn({ err: err.message }, 'health subscription error');
        else this.received++;
      },
    });
    this.log.info({ subject: CONNECTOR_HEALTH_SUBJECT }, 'health worker subscribed');
  }

  async stop(): Promise<void> {
    await this.subscription?.drain();
  }
}
