import { performance } from 'node:perf_hooks';
import type { ConsumerMessages, JsMsg, NatsConnection } from 'nats';
import type { Logger } from '../platform/logger';
import { countRejected, type HealthMetrics } from './metrics';
import type { HealthPipeline } from './pipeline';
import { operatorIdOfSubject, validateReport, type Validation } from './report';
import { CONNECTOR_HEALTH_PREFIX, ensureHealthConsumer, ensureHealthStream } from './stream';

export interface HealthConsumerOptions {
  stream: string;
  streamMaxAgeS: number;
  consumer: string;
  subjectPrefix?: string;
  batchMax: number;
  maxAckPending: number;
  retryDelayMs: number;
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
const LAG_REFRESH_MS = 10_000;

/**
 * The durable pull consumer on `connector.health.>`: replicas share it, each report goes to one
 * of them. Messages are taken as they arrive and processed in batches of whatever has arrived
 * meanwhile (up to batchMax), so a quiet stream costs one report of latency and a busy one gets
 * large batches. A batch is acked only after the pipeline's writes succeeded; otherwise it is
 * naked with a delay and comes back. A bad report is terminated: counted, never retried.
 */
export class HealthConsumer {
  private readonly prefix: string;
  private readonly queue: JsMsg[] = [];
  private wake?: () => void;
  private messages?: ConsumerMessages;
  private stopping = false;
  private pulling?: Promise<void>;
  private processing?: Promise<void>;
  private lagTimer?: NodeJS.Timeout;
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

  /** Finishes the batch in hand; reports not started are handed back for redelivery at once. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.lagTimer);
    this.messages?.stop();
    this.wake?.();
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

  private async processForever(): Promise<void> {
    while (!this.stopping) {
      if (this.queue.length === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      await this.handle(this.queue.splice(0, this.options.batchMax));
    }
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
    const accepted: { m: JsMsg; valid: Extract<Validation, { ok: true }>['valid'] }[] = [];
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
    try {
      const outcomes = await pipeline.ingest(accepted.map((a) => a.valid));
      outcomes.forEach((outcome, i) => {
        const { m } = accepted[i]!;
        if (outcome.accepted) {
          metrics.consumed.inc({ source: 'nats' });
          m.ack();
        } else {
          countRejected(metrics, outcome.reason, 'nats');
          log.warn({ subject: m.subject, reason: outcome.reason }, 'health report rejected');
          m.term();
        }
      });
      metrics.batchSeconds.observe({ outcome: 'ok' }, (performance.now() - started) / 1000);
    } catch (err) {
      log.warn(
        { err: (err as Error).message, reports: accepted.length, retryInMs: this.options.retryDelayMs },
        'health batch failed; it will be redelivered',
      );
      for (const { m } of accepted) m.nak(this.options.retryDelayMs);
      metrics.batchSeconds.observe({ outcome: 'failed' }, (performance.now() - started) / 1000);
    }
    const last = batch[batch.length - 1];
    if (last) metrics.pending.set(last.info.pending);
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
