import { performance } from 'node:perf_hooks';
import type { ConsumerMessages, JsMsg, NatsConnection } from 'nats';
import type { Logger } from '../platform/logger';
import { countRejected, type HealthMetrics } from './metrics';
import type { HealthPipeline, IngestOutcome } from './pipeline';
import { operatorIdOfSubject, validateReport, type ValidReport, type Validation } from './report';
import { CONNECTOR_HEALTH_PREFIX, ensureHealthConsumer, ensureHealthStream } from './stream';

export interface HealthConsumerOptions {
  stream: string;
  streamMaxAgeS: number;
  consumer: string;
  subjectPrefix?: string;
  batchMax: number;
  /** Batches handled at once (HEALTH_BATCHES_IN_FLIGHT); 1 when omitted. */
  batchesInFlight?: number;
  maxAckPending: number;
  retryDelayMs: number;
  /** A report is dropped once it has failed on its own this many times (HEALTH_MAX_DELIVERIES). */
  maxDeliveries: number;
  deliverNew?: boolean;
  inactiveThresholdMs?: number;
}

export interface HealthConsumerDeps {
  nats: NatsConnection;
  pipeline: HealthPipeline;
  metrics: HealthMetrics;
  log: Logger;
}

const RESTART_DELAY_MS = 1000;

interface Accepted {
  m: JsMsg;
  valid: ValidReport;
}
const LAG_REFRESH_MS = 10_000;
/** Reports remembered as failing on their own; the oldest are forgotten past this. */
const OWN_FAILURES_KEPT = 10_000;

/**
 * The durable pull consumer on `connector.health.>`: replicas share it, each report goes to one
 * of them. Messages are taken as they arrive and processed in batches of whatever has arrived
 * meanwhile (up to batchMax), so a quiet stream costs one report of latency and a busy one gets
 * large batches. A batch is acked only after the pipeline's writes succeeded; otherwise it is
 * naked with a delay and comes back. A bad report is terminated: counted, never retried. When a
 * batch fails while every dependency answers, its reports are retried one by one, and one that
 * keeps failing on its own is dropped after HEALTH_MAX_DELIVERIES such failures (counted per
 * replica; an outage's deliveries do not count).
 */
export class HealthConsumer {
  private readonly prefix: string;
  private readonly queue: JsMsg[] = [];
  private wake?: () => void;
  /** Resolves the pull loop's wait once the queue has room again. */
  private roomMade?: () => void;
  private messages?: ConsumerMessages;
  private stopping = false;
  private pulling?: Promise<void>;
  private processing?: Promise<void>;
  private lagTimer?: NodeJS.Timeout;
  /**
   * How often each report (by stream sequence) failed on its own while every dependency answered.
   * Not JetStream's delivery count: that also counts the deliveries of an outage, and a report
   * failing once as a dependency comes back would be dropped at once.
   */
  private readonly ownFailures = new Map<number, number>();
  /** False until the consumer exists and while the pull loop restarts. */
  connected = false;

  constructor(
    private readonly deps: HealthConsumerDeps,
    private readonly options: HealthConsumerOptions,
  ) {
    this.prefix = options.subjectPrefix ?? CONNECTOR_HEALTH_PREFIX;
  }

  async start(): Promise<void> {
    const { nats } = this.deps;
    await ensureHealthStream(nats, this.options.stream, this.prefix, this.options.streamMaxAgeS);
    await this.ensureConsumer();
    await this.refreshLag();
    this.lagTimer = setInterval(() => void this.refreshLag(), LAG_REFRESH_MS);
    this.lagTimer.unref();
    this.pulling = this.pullForever();
    this.processing = this.processForever();
    // consume() subscribes asynchronously; report started once it has.
    while (!this.messages && !this.stopping) await new Promise((r) => setTimeout(r, 5));
  }

  /** Finishes the batches in hand; reports not started are handed back for redelivery at once. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.lagTimer);
    this.messages?.stop();
    this.wake?.();
    this.roomMade?.();
    await this.processing;
    await this.pulling;
    for (const m of this.queue.splice(0)) m.nak();
  }

  private ensureConsumer(): Promise<void> {
    return ensureHealthConsumer(this.deps.nats, {
      stream: this.options.stream,
      durable: this.options.consumer,
      subjectPrefix: this.prefix,
      maxAckPending: this.options.maxAckPending,
      deliverNew: this.options.deliverNew,
      inactiveThresholdMs: this.options.inactiveThresholdMs,
    });
  }

  private async pullForever(): Promise<void> {
    const js = this.deps.nats.jetstream();
    while (!this.stopping) {
      try {
        const consumer = await js.consumers.get(this.options.stream, this.options.consumer);
        const messages = await consumer.consume({ max_messages: this.options.batchMax });
        this.messages = messages;
        this.connected = true;
        if (this.stopping) messages.stop();
        for await (const m of messages) {
          this.queue.push(m);
          this.wake?.();
          // Taken no further than the batches in flight and the next one: the rest waits on the
          // server, not here, where a slow batch could let its ack_wait run out (a redelivery).
          while (this.queue.length >= this.queueLimit() && !this.stopping) {
            await new Promise<void>((resolve) => (this.roomMade = resolve));
            this.roomMade = undefined;
          }
        }
      } catch (err) {
        this.deps.log.warn({ err: (err as Error).message }, 'health consumer failed; restarting');
      }
      this.connected = false;
      if (!this.stopping) {
        await new Promise((r) => setTimeout(r, RESTART_DELAY_MS));
        // The consumer may have been deleted: make it again.
        await this.ensureConsumer().catch(() => undefined);
      }
    }
  }

  /**
   * Up to batchesInFlight batches at once: one batch's writes overlap the next one's lookup and
   * the stream's delivery. For the cache and the log their order does not matter (the cache
   * keeps the newest report whichever batch writes it, the log skips what it holds), and each
   * report is acked by its own batch after its writes. The workflows' signals may then arrive
   * out of reportedAt order, as they already may from two replicas: drain compares timestamps;
   * onboarding and rotation act on what arrives.
   */
  private async processForever(): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    const most = this.options.batchesInFlight ?? 1;
    while (!this.stopping) {
      if (inFlight.size >= most) {
        await Promise.race(inFlight);
        continue;
      }
      if (this.queue.length === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      const batch = this.queue.splice(0, this.options.batchMax);
      this.roomMade?.();
      const handled: Promise<void> = this.handle(batch)
        .catch((err: unknown) => this.deps.log.error({ err: (err as Error).message }, 'health batch not handled'))
        .finally(() => inFlight.delete(handled));
      inFlight.add(handled);
    }
    await Promise.all(inFlight);
  }

  /** Messages held here at most: a batch for each one in flight and the next. */
  private queueLimit(): number {
    return this.options.batchMax * ((this.options.batchesInFlight ?? 1) + 1);
  }

  private validate(m: JsMsg): Validation {
    const operatorId = operatorIdOfSubject(m.subject, this.prefix);
    if (!operatorId)
      return { ok: false, reason: 'subject', errors: [{ field: 'subject', message: 'not <prefix>.<operatorId>' }] };
    let payload: unknown;
    try {
      payload = JSON.parse(Buffer.from(m.data).toString('utf8'));
    } catch {
      return { ok: false, reason: 'invalid_json', errors: [{ field: 'body', message: 'not JSON' }] };
    }
    return validateReport(payload, operatorId);
  }

  private async handle(batch: JsMsg[]): Promise<void> {
    const { pipeline, metrics, log } = this.deps;
    const started = performance.now();
    const accepted: Accepted[] = [];
    for (const m of batch) {
      const result = this.validate(m);
      if (result.ok) {
        accepted.push({ m, valid: result.valid });
        continue;
      }
      // Field names and rules only: the payload's values stay out of the log.
      countRejected(metrics, result.reason, 'nats');
      log.warn({ subject: m.subject, reason: result.reason, errors: result.errors }, 'health report rejected');
      m.term();
    }
    const failed = await this.ingest(accepted);
    if (failed.length > 0) {
      if (failed.length > 1 && (await pipeline.dependenciesAnswer())) {
        // Everything answers, yet the batch failed: some report fails on its own. One by one, so
        // that one bad report cannot hold back the rest of its batch forever.
        const alone = [];
        for (const one of failed) alone.push(...(await this.ingest([one])));
        this.retryOrGiveUp(alone, true);
      } else {
        this.retryOrGiveUp(failed, failed.length === 1 && (await pipeline.dependenciesAnswer()));
      }
    }
    metrics.batchSeconds.observe(
      { outcome: failed.length > 0 ? 'failed' : 'ok' },
      (performance.now() - started) / 1000,
    );
    const last = batch[batch.length - 1];
    if (last) metrics.pending.set(last.info.pending);
  }

  /** Ingests reports and acks or terminates each by its outcome; the reports whose ingest failed. */
  private async ingest(accepted: Accepted[]): Promise<Accepted[]> {
    const { pipeline, metrics, log } = this.deps;
    if (accepted.length === 0) return [];
    let outcomes: IngestOutcome[];
    try {
      outcomes = await pipeline.ingest(accepted.map((a) => a.valid));
    } catch (err) {
      log.warn({ err: (err as Error).message, reports: accepted.length }, 'health batch failed');
      return accepted;
    }
    outcomes.forEach((outcome, i) => {
      const { m } = accepted[i]!;
      if (this.ownFailures.size > 0) this.ownFailures.delete(m.seq);
      if (outcome.accepted) {
        metrics.consumed.inc({ source: 'nats' });
        m.ack();
      } else {
        countRejected(metrics, outcome.reason, 'nats');
        log.warn({ subject: m.subject, reason: outcome.reason }, 'health report rejected');
        m.term();
      }
    });
    return [];
  }

  /**
   * Hands failed reports back for redelivery after the retry delay. A report that failed on its
   * own (`alone`: every dependency answered) for the last allowed time is terminated instead:
   * counted and logged by subject, never by its values.
   */
  private retryOrGiveUp(failed: Accepted[], alone: boolean): void {
    const { metrics, log } = this.deps;
    for (const { m } of failed) {
      if (!alone) {
        m.nak(this.options.retryDelayMs);
        continue;
      }
      const own = (this.ownFailures.get(m.seq) ?? 0) + 1;
      this.ownFailures.delete(m.seq);
      if (own >= this.options.maxDeliveries) {
        countRejected(metrics, 'failed_repeatedly', 'nats');
        log.error(
          { subject: m.subject, deliveries: m.info.deliveryCount, failedAlone: own },
          'health report failed on its own on every try while its dependencies answered; dropped',
        );
        m.term();
        continue;
      }
      // Re-inserted last: the oldest are forgotten first when too many are remembered.
      this.ownFailures.set(m.seq, own);
      if (this.ownFailures.size > OWN_FAILURES_KEPT) {
        this.ownFailures.delete(this.ownFailures.keys().next().value as number);
      }
      m.nak(this.options.retryDelayMs);
    }
    if (failed.length > 0) {
      log.warn({ reports: failed.length, retryInMs: this.options.retryDelayMs }, 'health reports will be redelivered');
    }
  }

  private async refreshLag(): Promise<void> {
    try {
      const jsm = await this.deps.nats.jetstreamManager();
      const info = await jsm.consumers.info(this.options.stream, this.options.consumer);
      this.deps.metrics.pending.set(info.num_pending);
    } catch {
      // The next refresh or batch sets it.
    }
  }
}
