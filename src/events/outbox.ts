import { randomUUID } from 'node:crypto';
import type { PoolClient } from 'pg';
import { AckPolicy, DeliverPolicy, nanos, type NatsConnection } from 'nats';
import { ensureStream } from '../clients/nats';
import type { Db } from '../clients/postgres';
import { PgListener } from '../db/listener';
import {
  insertOutboxEvents,
  markOutboxPublished,
  parkOutboxEvent,
  readOutboxBacklog,
  readOutboxQueue,
  releaseRelayLock,
  takeRelayLock,
  type OutboxBacklog,
  type QueuedOutboxRow,
} from '../db/outbox';
import type { Logger } from '../platform/logger';
import type { ConfigEventData } from './catalog';
import {
  configSubject,
  EVENT_MAX_BYTES,
  EventTooLargeError,
  largestField,
  type ConfigChange,
  type EventEnvelope,
} from './envelope';

/**
 * The one path every event leaves by. A change writes its event into ops.event_outbox in the
 * same transaction (so it exists exactly when the change commits); the relay then publishes
 * pending rows in commit order with Nats-Msg-Id = eventId, so a retry after a crash between
 * publish and mark is dropped by JetStream's duplicate window instead of delivered twice.
 */

export interface NewConfigEvent<C extends ConfigChange> {
  change: C;
  operatorId: string;
  version: number;
  actor: string;
  /** Typed by the event catalog (src/events/catalog.ts), which docs/asyncapi.yaml follows. */
  data: ConfigEventData<C>;
}

export async function appendConfigEvent<C extends ConfigChange>(
  tx: PoolClient,
  event: NewConfigEvent<C>,
): Promise<EventEnvelope> {
  const [envelope] = await appendConfigEvents(tx, [event]);
  return envelope as EventEnvelope;
}

/** Many events in one statement, in the order given (a prefix table's fan-out to its operators). */
export async function appendConfigEvents<C extends ConfigChange>(
  tx: PoolClient,
  events: ReadonlyArray<NewConfigEvent<C>>,
): Promise<EventEnvelope[]> {
  const occurredAt = new Date().toISOString();
  const envelopes: EventEnvelope[] = events.map((event) => ({
    eventId: randomUUID(),
    type: configSubject(event.change),
    operatorId: event.operatorId,
    version: event.version,
    occurredAt,
    actor: event.actor,
    data: event.data,
  }));
  if (envelopes.length === 0) return envelopes;
  const rows = envelopes.map((e) => ({
    eventId: e.eventId,
    subject: e.type,
    operatorId: e.operatorId,
    version: e.version,
    payload: JSON.stringify(e),
    actor: e.actor,
  }));
  rows.forEach((row, i) => {
    const bytes = Buffer.byteLength(row.payload);
    if (bytes > EVENT_MAX_BYTES) throw new EventTooLargeError(bytes, largestField(envelopes[i]?.data));
  });
  await insertOutboxEvents(tx, rows);
  return envelopes;
}

/** The channel the outbox's insert trigger notifies at commit (migrations/…_outbox-hardening.sql). */
export const OUTBOX_CHANNEL = 'ops_outbox';
/** Rows read at a time by default; of these, the next event of each operator is in flight at once. */
const BATCH = 500;
const ACTOR = 'system:outbox-relay';
const ALERT_EVERY_MS = 60_000;
const WAKE_RETRY_MS = 50;
/** Longest a woken relay keeps the lock while commits keep coming. */
const HOLD_MS = 250;
const HEADER_ALLOWANCE_BYTES = 128;
/** Margin for the clock difference between PostgreSQL (created_at) and NATS (stored time). */
const CLOCK_SKEW_MS = 30_000;
/** Headers per pull of the look-up of old events. */
const LOOKUP_PULL = 1000;
/** No event ids: a batch with nothing old to look up. */
const NONE: ReadonlySet<string> = new Set();

/** What the relay counts; src/events/outbox-metrics.ts turns these into Prometheus counters. */
export interface RelayCounters {
  /**
   * One event published, by its subject (the config event's type), `sinceCommitS` after its row
   * was written (PostgreSQL's clock up to the batch's read, this process's clock from there).
   */
  published(subject: string, sinceCommitS: number): void;
  publishFailed(): void;
  parked(): void;
}

export interface RelayOptions {
  /** The stream the relay re-creates if a publish finds no stream (someone deleted it). */
  stream?: string;
  /** An error-level log once the oldest pending event is older than this. */
  alertAgeS?: number;
  /** Rows read per batch (BATCH): tests make it small to cross batch boundaries. */
  batchSize?: number;
}

/**
 * Publishes the outbox to JetStream. Every replica runs one; a session advisory lock lets one
 * publish at a time, so each operator's events leave in version order (publishes of different
 * operators are pipelined: every operator's next event in flight at once). Relays wake on the outbox trigger's
 * NOTIFY (no polling delay on the happy path) and also poll, which catches whatever a lost
 * notification, a NATS outage or a crashed replica left behind.
 */
export class OutboxRelay {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private readonly listener: PgListener;
  private wakeRequested = false;
  private waking?: Promise<void>;
  private lastAlertCheckAt = 0;
  private window?: { s: number; at: number };
  private counters?: RelayCounters;

  constructor(
    private readonly db: Db,
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    private readonly options: RelayOptions = {},
  ) {
    // Whatever committed while nobody listened goes out as soon as it listens (again).
    this.listener = new PgListener(
      db,
      [OUTBOX_CHANNEL],
      { onNotify: () => this.wake(), onListening: () => this.wake(), onLost: () => undefined },
      log,
    );
  }

  private get batchSize(): number {
    return this.options.batchSize ?? BATCH;
  }

  instrument(counters: RelayCounters): void {
    this.counters = counters;
  }

  /**
   * Publishes everything pending, oldest first, pipelined across operators and in version order
   * within each (publishPending); returns how many events left. Acknowledged events are marked
   * once per batch, so a crash republishes at most the two batches in hand, which the duplicate
   * window (or, for old rows, the stream look-up of storedAlready) drops.
   *
   * `ifIdle`: give up at once when another relay holds the lock (it, or the poller after it,
   * will publish). The poller uses it so a NATS outage, during which the holder waits out
   * publish timeouts, cannot pile up waiting connections.
   */
  async flush(options: { ifIdle?: boolean } = {}): Promise<number> {
    return (await this.flushWith(options.ifIdle ? 'try' : 'wait')) ?? 0;
  }

  /**
   * The flush itself; undefined when `try` found the lock taken. `whileWoken`: while commits keep
   * waking the relay, it flushes again under the same lock, for at most HOLD_MS (a flush waiting
   * for the lock then gets its turn): in a burst of commits, two round trips fewer per flush.
   */
  private async flushWith(lock: 'try' | 'wait', whileWoken = false): Promise<number | undefined> {
    const client = await this.db.connect();
    try {
      if (!(await takeRelayLock(client, lock))) return undefined;
      try {
        const until = performance.now() + HOLD_MS;
        let sent = await this.publishPending(client);
        while (whileWoken && this.wakeRequested && this.timer && performance.now() < until) {
          this.wakeRequested = false;
          sent += await this.publishPending(client);
        }
        return sent;
      } finally {
        await releaseRelayLock(client);
      }
    } finally {
      client.release();
    }
  }

  /**
   * The next batch of the queue after row `afterId` (readOutboxQueue) as of the pass's first read
   * (`asOf`, its snapshot; none for the first read), and when it was read.
   */
  private async pendingAfter(
    client: PoolClient,
    afterId: string,
    asOf: string | null,
  ): Promise<{ rows: QueuedOutboxRow[]; readAt: number }> {
    const rows = await readOutboxQueue(client, afterId, this.batchSize, asOf);
    return { rows, readAt: performance.now() };
  }

  private async publishPending(client: PoolClient): Promise<number> {
    const batch = this.batchSize;
    const js = this.nc.jetstream();
    let sent = 0;
    // Operators that met a parked or failed event in this flush: nothing newer of theirs goes out
    // until the next flush reads them again (the batch after was read before the park).
    const held = new Set<string>();
    // Every batch of this pass as of its first read: what commits meanwhile waits for the next
    // pass, which starts from the queue's head (readOutboxQueue, `asOf`).
    let asOf: string | null = null;
    let next = this.pendingAfter(client, '0', asOf);
    // A batch's marks are written while the next batch is published; each mark waits for the one
    // before, and the flush waits for the last, however it ends: still one UPDATE per batch.
    let marking: Promise<void> = Promise.resolve();
    let lookedUp: { since: number; ids: Set<string> } | undefined;
    try {
      for (;;) {
        const { rows, readAt } = await next;
        asOf ??= rows[0]?.snapshot ?? null;
        // The batch after this one is read while this one is published: its rows are newer, and
        // each operator's are sent only after this batch's acks.
        const last = rows[rows.length - 1];
        next =
          rows.length === batch && last
            ? this.pendingAfter(client, last.id, asOf)
            : Promise.resolve({ rows: [], readAt: performance.now() });
        // A failure below leaves the prefetch unread: its error, if any, is not this flush's.
        next.catch(() => undefined);
        // Only what this flush may publish: a parked row older than the window must not make
        // every flush read the stream from its time on.
        lookedUp = await this.storedAlready(
          rows.filter((r) => !r.published && !r.held),
          lookedUp,
        );
        const stored = lookedUp?.ids ?? NONE;
        // Marked once per batch (and before any error leaves): a crash republishes at most the
        // batches in hand, which the duplicate window, or storedAlready for old rows, drops.
        const acked: string[] = [];
        const previous = marking;
        const markAcked = async () => {
          await previous;
          if (acked.length > 0) await markOutboxPublished(client, acked.splice(0), ACTOR);
        };
        // Pipelined: every operator of the batch has its next event in flight at once, each sent
        // as soon as that operator's previous one is acknowledged. One event per operator in
        // flight keeps every operator's version order on the stream even when a publish fails:
        // nothing of that operator after the failed event is sent. Events without an operator
        // keep their order among themselves.
        const queues = new Map<string, QueuedOutboxRow[]>();
        for (const row of rows) {
          if (row.published) {
            acked.push(row.id);
            continue;
          }
          if (row.held) held.add(row.operatorId ?? '');
          if (held.has(row.operatorId ?? '')) continue;
          const queue = queues.get(row.operatorId ?? '');
          if (queue) queue.push(row);
          else queues.set(row.operatorId ?? '', [row]);
        }
        const parks: Array<{ row: QueuedOutboxRow; reason: string }> = [];
        let failure: { reason: unknown } | undefined;
        const publishInOrder = async (operator: string, queue: QueuedOutboxRow[]) => {
          for (const row of queue) {
            // After a failure no publish starts; those in flight are still awaited.
            if (failure) return;
            if (stored.has(row.eventId)) {
              // Published by an attempt that never got to mark it: publishing again would duplicate it.
              acked.push(row.id);
              this.log.info({ eventId: row.eventId, subject: row.subject }, 'outbox event was already on the stream');
              continue;
            }
            const tooLarge = this.tooLarge(row.body);
            if (tooLarge) {
              // Parked once the batch's publishes are done: none is left unawaited if it fails.
              parks.push({ row, reason: tooLarge });
              held.add(operator); // its later events wait behind the parked one
              return;
            }
            try {
              // msgID travels as the Nats-Msg-Id header.
              await js.publish(row.subject, row.body, { msgID: row.eventId });
            } catch (err) {
              this.counters?.publishFailed();
              failure ??= { reason: err };
              held.add(operator);
              return;
            }
            acked.push(row.id);
            this.counters?.published(row.subject, Math.max(0, row.ageS) + (performance.now() - readAt) / 1000);
            sent++;
          }
        };
        await Promise.all([...queues].map(([operator, queue]) => publishInOrder(operator, queue)));
        for (const { row, reason } of parks) await this.park(client, row, reason);
        if (failure) {
          // The publish error is what the caller must see, not a failed mark (logged by finally).
          marking = markAcked();
          if (isNoStream(failure.reason) && this.options.stream) await this.recreateStream();
          throw failure.reason;
        }
        marking = markAcked();
        if (rows.length < batch) return sent;
      }
    } finally {
      await marking.catch((err: unknown) =>
        this.log.warn(
          { err: (err as Error).message },
          'outbox marks failed; those events go out again (the stream drops the copies)',
        ),
      );
    }
  }

  /**
   * The event ids, among this batch's rows older than the stream's duplicate window, that the
   * stream already holds. Exactly-once must not depend on the relay retrying within that window:
   * after a NATS outage or a relay crash longer than it, an event stored but never acknowledged
   * would otherwise go out twice. Reads only headers of config events, from the oldest such row
   * on (rare: only a backlog older than the window pays for it), once per pass: `lookedUp` holds
   * the pass's look-up, and a later batch whose old rows are no older reuses it (what the stream
   * got since, this pass published from earlier batches).
   */
  private async storedAlready(
    rows: QueuedOutboxRow[],
    lookedUp: { since: number; ids: Set<string> } | undefined,
  ): Promise<{ since: number; ids: Set<string> } | undefined> {
    const stream = this.options.stream;
    if (!stream || rows.length === 0) return lookedUp;
    const windowS = await this.duplicateWindowS(stream);
    const old = rows.filter((r) => r.ageS > windowS - CLOCK_SKEW_MS / 1000);
    if (old.length === 0) return lookedUp;
    const since = Math.min(...old.map((r) => r.createdAt.getTime())) - CLOCK_SKEW_MS;
    if (lookedUp && lookedUp.since <= since) return lookedUp;
    return { since, ids: await this.configEventIdsSince(stream, new Date(since)) };
  }

  /**
   * The Nats-Msg-Id of every config event the stream stored from `since` on. A consumer of its
   * own says first how many there are: other subjects (operator.health) stored meanwhile are no
   * sign that a config event is still to come, and none at all is an answer, not a stall.
   */
  private async configEventIdsSince(stream: string, since: Date): Promise<Set<string>> {
    const ids = new Set<string>();
    const jsm = await this.nc.jetstreamManager();
    const lookup = await jsm.consumers
      .add(stream, {
        filter_subject: 'operator.config.>',
        headers_only: true,
        deliver_policy: DeliverPolicy.StartTime,
        opt_start_time: since.toISOString(),
        ack_policy: AckPolicy.None,
        mem_storage: true,
        inactive_threshold: nanos(60_000),
      })
      .catch((err: unknown) => {
        if (isNoStream(err) || /stream not found/i.test((err as Error).message)) return undefined;
        throw err;
      });
    if (!lookup) return ids;
    try {
      let left = lookup.num_pending;
      const consumer = left > 0 ? await this.nc.jetstream().consumers.get(stream, lookup.name) : undefined;
      // In pulls of up to a thousand headers: one round trip per message made a backlog's
      // look-up take seconds under the relay's lock.
      while (consumer && left > 0) {
        let got = 0;
        for await (const m of await consumer.fetch({ max_messages: Math.min(left, LOOKUP_PULL), expires: 2000 })) {
          got++;
          const id = m.headers?.get('Nats-Msg-Id');
          if (id) ids.add(id);
          left = m.info.pending;
        }
        // A partial answer could let an event out twice: give up this flush instead.
        if (got === 0) throw new Error('the stream did not finish answering the look-up of old events');
      }
      return ids;
    } finally {
      await jsm.consumers.delete(stream, lookup.name).catch(() => undefined);
    }
  }

  /** The stream's duplicate window in seconds, asked at most once a minute (not per batch). */
  private async duplicateWindowS(stream: string): Promise<number> {
    if (this.window && Date.now() - this.window.at < 60_000) return this.window.s;
    const jsm = await this.nc.jetstreamManager();
    const info = await jsm.streams.info(stream).catch(() => undefined);
    const s = (info?.config.duplicate_window ?? 0) / 1e9;
    this.window = { s, at: Date.now() };
    return s;
  }

  /** The server refuses a message over its max_payload, however often it is retried. */
  private tooLarge(body: string): string | undefined {
    const max = this.nc.info?.max_payload;
    // The Nats-Msg-Id header travels in the same message.
    const size = Buffer.byteLength(body) + HEADER_ALLOWANCE_BYTES;
    return max !== undefined && size > max
      ? `payload of ${size} bytes exceeds the server's max_payload ${max}`
      : undefined;
  }

  private async park(client: PoolClient, row: QueuedOutboxRow, error: string): Promise<void> {
    await parkOutboxEvent(client, row.id, error, ACTOR);
    this.counters?.parked();
    this.log.error(
      { outboxId: row.id, eventId: row.eventId, subject: row.subject, operatorId: row.operatorId, error },
      'outbox event parked: it can never be published; this operator\'s later events wait behind it (runbook: "A parked outbox event")',
    );
  }

  private async recreateStream(): Promise<void> {
    const stream = this.options.stream as string;
    this.log.error({ stream }, 'no stream answered a publish; re-creating the event stream');
    await ensureStream(this.nc, stream).catch((err: unknown) =>
      this.log.warn({ err: (err as Error).message, stream }, 'could not re-create the event stream'),
    );
  }

  /** How far behind publishing is; read by the metrics and the alert. */
  async backlog(): Promise<OutboxBacklog> {
    return readOutboxBacklog(this.db);
  }

  /**
   * Runs the relay in the background: LISTEN for commits, plus a poll every intervalMs that
   * also raises the alert when the backlog grows old.
   */
  start(intervalMs: number): void {
    const tick = async () => {
      this.running = this.flush({ ifIdle: true })
        .catch((err: unknown) =>
          this.log.warn({ err: (err as Error).message }, 'outbox relay could not publish; will retry'),
        )
        .then(() => this.alertIfBehind());
      await this.running;
      if (this.timer) this.timer = setTimeout(() => void tick(), intervalMs);
    };
    this.timer = setTimeout(() => void tick(), intervalMs);
    this.listener.start();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.listener.stop();
    await this.running;
    await this.waking;
  }

  /**
   * Coalesces notifications: one flush at a time per relay, and one more after it if a commit
   * arrived meanwhile. When another relay holds the lock, it tries again (backing off to 1 s)
   * until it gets it: the holder may have finished its last batch just before this commit.
   */
  private wake(): void {
    this.wakeRequested = true;
    if (this.waking) return;
    this.waking = (async () => {
      let retryMs = WAKE_RETRY_MS;
      while (this.wakeRequested && this.timer) {
        this.wakeRequested = false;
        const sent = await this.flushWith('try', true).catch((err: unknown) => {
          this.log.warn({ err: (err as Error).message }, 'outbox relay could not publish; will retry');
          return 0;
        });
        if (sent === undefined) {
          // Not queueing on the holder's lock: stop() must never wait on another session.
          this.wakeRequested = true;
          await new Promise((r) => setTimeout(r, retryMs));
          retryMs = Math.min(retryMs * 2, 1000);
        } else {
          retryMs = WAKE_RETRY_MS;
        }
      }
    })().finally(() => {
      this.waking = undefined;
    });
  }

  private async alertIfBehind(): Promise<void> {
    const { alertAgeS } = this.options;
    // Checked (not only alerted) at most once a minute: the poll must not count the outbox each tick.
    if (alertAgeS === undefined || Date.now() - this.lastAlertCheckAt < ALERT_EVERY_MS) return;
    this.lastAlertCheckAt = Date.now();
    const backlog = await this.backlog().catch(() => undefined);
    if (!backlog || (backlog.oldestAgeS < alertAgeS && backlog.parked === 0)) return;
    this.log.error(
      { ...backlog, alertAgeS },
      'outbox backlog is not draining: committed changes are not reaching NATS (runbook: "Outbox backlog")',
    );
  }
}

function isNoStream(err: unknown): boolean {
  // nats.js answers a publish no stream listens to with a 503 "no responders".
  return err instanceof Error && ((err as { code?: string }).code === '503' || /no responders/i.test(err.message));
}
