import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg, type NatsConnection } from 'nats';
import type { EventEnvelope } from '../events/envelope';

/**
 * For peers (routing engine, SMPP connectors): apply this service's config events exactly once
 * in effect, in version order, dropping stale and duplicate deliveries. Copy it or import it.
 *
 * The rule: keep, per operator, the highest `version` applied, in the same store as what the
 * event changes (ideally in the same transaction), and skip any event whose version is not
 * higher. A duplicate (a redelivery, a replay of the stream) has a version already applied, so
 * the version check also deduplicates by eventId. A gap (a version skipped) means an event is
 * missing from this consumer's view: re-read the operator's full config from
 * `GET /v1/internal/operators/{id}/config` instead of trusting the event alone.
 */

/** Where the consumer keeps the last applied version of each operator. */
export interface AppliedVersions {
  get(operatorId: string): Promise<number | undefined>;
  set(operatorId: string, version: number): Promise<void>;
}

/** Enough for a single process that rebuilds its state from the stream at start. */
export class InMemoryAppliedVersions implements AppliedVersions {
  private readonly versions = new Map<string, number>();

  async get(operatorId: string): Promise<number | undefined> {
    return this.versions.get(operatorId);
  }

  async set(operatorId: string, version: number): Promise<void> {
    this.versions.set(operatorId, version);
  }
}

export type Outcome = { applied: true; gap: boolean } | { applied: false; reason: 'stale' };

/** Applies one event unless its version is not newer than the last one applied. */
export async function handleConfigEvent(
  event: EventEnvelope,
  versions: AppliedVersions,
  apply: (event: EventEnvelope, gap: boolean) => Promise<void>,
): Promise<Outcome> {
  const last = await versions.get(event.operatorId);
  if (last !== undefined && event.version <= last) return { applied: false, reason: 'stale' };
  // Versions start at 1 (`created`): a first event above it means this consumer missed some.
  const gap = event.version > (last ?? 0) + 1;
  await apply(event, gap);
  await versions.set(event.operatorId, event.version);
  return { applied: true, gap };
}

export interface ConfigConsumerOptions {
  stream: string;
  /** The durable consumer's name: one per peer service, shared by its replicas. */
  durable: string;
  versions: AppliedVersions;
  apply: (event: EventEnvelope, gap: boolean) => Promise<void>;
  /** Where a new durable starts; an existing one resumes where it stopped. */
  startTime?: Date;
  /** Delay before a failed apply is retried. */
  retryDelayMs?: number;
  onOutcome?: (event: EventEnvelope, outcome: Outcome) => void;
}

export interface RunningConsumer {
  stop(): Promise<void>;
}

/**
 * A durable pull consumer on `operator.config.>`. One unacknowledged message at a time, so a
 * failed apply is retried before anything newer is looked at: order holds across redeliveries.
 * (To scale out, run one consumer per slice of operators.)
 */
export async function consumeConfigEvents(
  nc: NatsConnection,
  options: ConfigConsumerOptions,
): Promise<RunningConsumer> {
  const jsm = await nc.jetstreamManager();
  // An existing durable resumes where it stopped; only a new one is created (with startTime).
  const existing = await jsm.consumers.info(options.stream, options.durable).catch(() => undefined);
  if (!existing) {
    await jsm.consumers.add(options.stream, {
      durable_name: options.durable,
      filter_subject: 'operator.config.>',
      ack_policy: AckPolicy.Explicit,
      max_ack_pending: 1,
      ...(options.startTime
        ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: options.startTime.toISOString() }
        : { deliver_policy: DeliverPolicy.All }),
    });
  }
  const consumer = await nc.jetstream().consumers.get(options.stream, options.durable);
  const messages: ConsumerMessages = await consumer.consume();
  const loop = (async () => {
    for await (const msg of messages) await handleMessage(msg, options);
  })();
  return {
    async stop() {
      messages.stop();
      await loop;
    },
  };
}

async function handleMessage(msg: JsMsg, options: ConfigConsumerOptions): Promise<void> {
  let event: EventEnvelope;
  try {
    event = msg.json<EventEnvelope>();
  } catch {
    msg.term(); // not JSON: no retry will make it readable
    return;
  }
  try {
    const outcome = await handleConfigEvent(event, options.versions, options.apply);
    msg.ack();
    options.onOutcome?.(event, outcome);
  } catch {
    msg.nak(options.retryDelayMs ?? 1000);
  }
}
