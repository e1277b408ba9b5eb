import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, type ConsumerConfig, type NatsConnection } from 'nats';

/** The inbound side of health ingestion on JetStream: the connectors' stream and our consumer. */

export const CONNECTOR_HEALTH_PREFIX = 'connector.health';

const nanos = (ms: number) => ms * 1e6;

/**
 * Creates the stream of connector reports when missing; an existing one is kept as it is (its
 * limits are ops' to tune). Limits retention with a short max age: a report says something only
 * for a minute, the stream only bridges a restart or an outage of this service.
 */
export async function ensureHealthStream(
  nc: NatsConnection,
  name: string,
  subjectPrefix: string,
  maxAgeS: number,
): Promise<void> {
  const jsm = await nc.jetstreamManager();
  try {
    await jsm.streams.info(name);
    return;
  } catch {
    // missing: create it below
  }
  try {
    await jsm.streams.add({
      name,
      subjects: [`${subjectPrefix}.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: nanos(maxAgeS * 1000),
      duplicate_window: nanos(Math.min(maxAgeS, 120) * 1000),
    });
  } catch (err) {
    // Another replica may have created it in the meantime.
    await jsm.streams.info(name).catch(() => {
      throw err;
    });
  }
}

export interface HealthConsumerSpec {
  stream: string;
  durable: string;
  subjectPrefix: string;
  maxAckPending: number;
  /** Tests start at "now" instead of replaying what the stream holds. */
  deliverNew?: boolean;
  /** Tests let the server remove a durable they forget. */
  inactiveThresholdMs?: number;
}

/** The durable pull consumer every replica shares; created when missing, otherwise left alone. */
export async function ensureHealthConsumer(nc: NatsConnection, spec: HealthConsumerSpec): Promise<void> {
  const jsm = await nc.jetstreamManager();
  try {
    await jsm.consumers.info(spec.stream, spec.durable);
    return;
  } catch {
    // missing: create it below
  }
  const config: Partial<ConsumerConfig> = {
    durable_name: spec.durable,
    filter_subject: `${spec.subjectPrefix}.>`,
    ack_policy: AckPolicy.Explicit,
    // Acks come after PostgreSQL, Redis, NATS and Temporal answered; a stuck batch is naked.
    ack_wait: nanos(30_000),
    // A report is redelivered until its writes succeed: a dependency outage loses nothing.
    max_deliver: -1,
    max_ack_pending: spec.maxAckPending,
    deliver_policy: spec.deliverNew ? DeliverPolicy.New : DeliverPolicy.All,
    ...(spec.inactiveThresholdMs ? { inactive_threshold: nanos(spec.inactiveThresholdMs) } : {}),
  };
  try {
    await jsm.consumers.add(spec.stream, config);
  } catch (err) {
    await jsm.consumers.info(spec.stream, spec.durable).catch(() => {
      throw err;
    });
  }
}
