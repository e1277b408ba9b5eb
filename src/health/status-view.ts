import type { Redis } from 'ioredis';
import { healthKey } from '../domain/health';
import type { HealthStatus } from '../domain/operator';
import type { Logger } from '../platform/logger';
import { statusOf, type HealthStatuses } from './cache';

/**
 * Operators' health statuses as route explain shows them, kept in memory by Redis's client-side
 * caching: the keys are read on a connection with CLIENT TRACKING on, and Redis tells this process
 * of every later change to a key it read (a report, an expiry, a delete) on a second connection
 * subscribed to `__redis__:invalidate`; the entry is dropped then. An entry also ends when its key
 * expires (the TTL is read with the value) and after `ttlMs` whatever happens. While tracking is
 * not in place (at start, or after either connection is closed, when a change could have been
 * missed) nothing is kept: every read goes to `direct`. A connection that went silent without
 * closing is found by a ping every HEARTBEAT_MS that must answer within the shared client's
 * command timeout (both connections inherit it); until then what is kept may be that old.
 */

const INVALIDATIONS = '__redis__:invalidate';
const HEARTBEAT_MS = 10_000;
/** How soon turning tracking on is tried again after it failed with both connections up. */
const RETRY_MS = 1000;

interface Entry {
  status: HealthStatus | undefined;
  until: number;
}

type Reply = [error: Error | null, result: unknown];

export class HealthStatusView implements HealthStatuses {
  private readonly entries = new Map<string, Entry>();
  private reader?: Redis;
  private invalidations?: Redis;
  /** The invalidation connection's client id while it is subscribed. */
  private redirectId?: number;
  private tracking = false;
  /**
   * Moves on every invalidation and whenever tracking ends: a read that saw it move while it ran
   * may hold a value older than that change, and is not kept.
   */
  private generation = 0;
  /** Moves whenever tracking ends (a connection closed, stop): a `track()` begun before gives up. */
  private epoch = 0;
  /** Moves when the invalidation connection closes: an id read on it before is no longer its own. */
  private invalidationsEpoch = 0;
  private heartbeat?: NodeJS.Timeout;
  private retry?: NodeJS.Timeout;
  /** `statuses` calls that asked Redis (whatever was not in memory, or all while nothing is kept). */
  redisReads = 0;

  constructor(
    private readonly redis: Redis,
    private readonly direct: HealthStatuses,
    private readonly log: Logger,
    private readonly ttlMs: number,
  ) {}

  /** Opens the two connections and turns tracking on (again after each reconnect). `ttlMs` 0: never. */
  start(): void {
    if (this.ttlMs <= 0 || this.reader) return;
    // Named after the shared client, so that CLIENT LIST tells them apart. Commands cut off by a
    // reconnect are not sent again on the new connection: track() starts over there.
    const name = this.redis.options.connectionName ?? 'operator-management';
    const options = { autoResendUnfulfilledCommands: false };
    const reader = this.redis.duplicate({ ...options, connectionName: `${name}-health-reads` });
    const invalidations = this.redis.duplicate({
      ...options,
      connectionName: `${name}-health-invalidations`,
      autoResubscribe: false,
    });
    this.reader = reader;
    this.invalidations = invalidations;
    for (const connection of [reader, invalidations]) {
      connection.on('error', (err: Error) => this.log.warn({ err: err.message }, 'Redis tracking connection error'));
      connection.on('ready', () => {
        if (this.reader === reader) void this.track();
      });
      connection.on('close', () => {
        if (this.reader !== reader) return;
        if (connection === invalidations) {
          this.redirectId = undefined;
          this.invalidationsEpoch++;
        }
        this.forget();
      });
    }
    invalidations.on('message', (channel: string, keys: string) => {
      if (channel === INVALIDATIONS && this.reader === reader) this.invalidate(keys);
    });
    this.heartbeat = setInterval(() => {
      if (this.redirectId === undefined) return;
      invalidations.ping().catch((err: unknown) => {
        this.log.warn({ err: (err as Error).message }, 'Redis invalidation connection did not answer; reconnecting it');
        this.forget();
        invalidations.disconnect(true);
      });
    }, HEARTBEAT_MS).unref();
  }

  stop(): void {
    clearInterval(this.heartbeat);
    clearTimeout(this.retry);
    const connections = [this.reader, this.invalidations];
    this.reader = this.invalidations = this.redirectId = undefined;
    this.forget();
    // Nothing to finish on either: closed at once, never left reconnecting behind a QUIT that hangs.
    for (const connection of connections) connection?.disconnect();
  }

  /** Whether statuses are being kept in memory now. */
  get keeping(): boolean {
    return this.tracking;
  }

  async statuses(operatorIds: readonly string[]): Promise<Map<string, HealthStatus>> {
    const reader = this.reader;
    if (!this.tracking || !reader) {
      this.redisReads++;
      return this.direct.statuses(operatorIds);
    }
    const statuses = new Map<string, HealthStatus>();
    const missing: string[] = [];
    const now = Date.now();
    for (const id of operatorIds) {
      const entry = this.entries.get(healthKey(id));
      if (!entry || entry.until <= now) missing.push(id);
      else if (entry.status) statuses.set(id, entry.status);
    }
    if (missing.length === 0) return statuses;
    this.redisReads++;
    const generation = this.generation;
    const keys = missing.map(healthKey);
    let replies: Reply[];
    try {
      const pipeline = reader.pipeline().mget(keys);
      for (const key of keys) pipeline.pttl(key);
      replies = ((await pipeline.exec()) ?? []) as Reply[];
      if (replies.length !== keys.length + 1) throw new Error('Redis answered part of a pipeline');
      for (const [err] of replies) if (err) throw err;
    } catch (err) {
      // This connection may be the only broken one: a new one, and the shared client meanwhile.
      this.log.warn({ err: (err as Error).message }, 'Redis tracking read failed; reconnecting it');
      // Kept nothing from now: the connection may take a while to close (no answer to its FIN).
      if (this.reader === reader) this.forget();
      reader.disconnect(true);
      return this.direct.statuses(operatorIds);
    }
    const values = replies[0]![1] as Array<string | null>;
    const keep = this.tracking && generation === this.generation;
    missing.forEach((id, i) => {
      const raw = values[i];
      const status = typeof raw === 'string' ? statusOf(raw) : undefined;
      if (status) statuses.set(id, status);
      if (!keep) return;
      const ttl = replies[i + 1]![1] as number; // -2: no key; -1: no expiry (the health writer always sets one)
      this.entries.set(keys[i]!, { status, until: now + (ttl >= 0 ? Math.min(ttl, this.ttlMs) : this.ttlMs) });
    });
    return statuses;
  }

  /** Tracking on the reader, its invalidations sent to the subscribed connection; both must be ready. */
  private async track(): Promise<void> {
    this.forget();
    clearTimeout(this.retry);
    const { reader, invalidations } = this;
    if (reader?.status !== 'ready' || invalidations?.status !== 'ready') return;
    const epoch = this.epoch;
    try {
      let id = this.redirectId;
      if (id === undefined) {
        const invalidationsEpoch = this.invalidationsEpoch;
        try {
          id = Number(await invalidations.client('ID'));
          await invalidations.subscribe(INVALIDATIONS);
        } catch (err) {
          // Subscribed or not, its id unknown: a new connection starts this over cleanly.
          if (invalidationsEpoch === this.invalidationsEpoch) invalidations.disconnect(true);
          throw err;
        }
        if (invalidationsEpoch !== this.invalidationsEpoch) return; // closed meanwhile: its 'ready' starts over
        this.redirectId = id;
        if (epoch !== this.epoch) return; // the reader closed meanwhile: its 'ready' starts over
      }
      await reader.client('TRACKING', 'OFF');
      await reader.client('TRACKING', 'ON', 'REDIRECT', String(id));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not turn Redis tracking on; health read without it');
      if (epoch === this.epoch && this.redirectId !== undefined) {
        this.retry = setTimeout(() => void this.track(), RETRY_MS).unref();
      }
      return;
    }
    if (epoch === this.epoch) this.tracking = true;
  }

  /** A comma-joined list of keys (ioredis joins the array Redis sends), or '' for "everything" (a flush). */
  private invalidate(keys: string): void {
    this.generation++;
    if (keys === '') this.entries.clear();
    else for (const key of keys.split(',')) this.entries.delete(key);
  }

  private forget(): void {
    this.epoch++;
    this.generation++;
    this.tracking = false;
    this.entries.clear();
  }
}
