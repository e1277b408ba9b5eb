import type { Client } from '@temporalio/client';
import type { NatsConnection } from 'nats';
import type { Redis } from 'ioredis';
import type { Db } from '../clients/postgres';
import { OPERATOR_CHANGES_CHANNEL } from '../db/change-feed';
import { findHealthTargets, insertHealthReports, type HealthTarget } from '../db/health-log';
import { NotifiedCache } from '../db/notified-cache';
import { HEALTH_SUBJECT } from '../events/envelope';
import type { Config } from '../platform/config';
import { createLogger, type Logger } from '../platform/logger';
import { HealthCache } from './cache';
import { HealthEventOutbox } from './event-outbox';
import type { HealthMetrics } from './metrics';
import type { ValidReport } from './report';
import { DrainSignalThrottle, sendSignals, signalsFor } from './signals';

export interface HealthPipelineDeps {
  db: Db;
  redis: Redis;
  nats: NatsConnection;
  temporal: Client;
  metrics: HealthMetrics;
  /** Where status changes go; the OPERATOR_EVENTS stream covers `operator.health`. */
  eventSubject?: string;
  /** DRAIN_INSTANCE_WINDOW_S: a busy instance's reports reach a drain at least twice per window. */
  drainInstanceWindowS?: number;
  /**
   * HEALTH_TARGETS_CACHE_TTL_S in ms: how long the operators' facts a batch looks up (status,
   * version, pending Vault version) are kept in memory, each dropped at once by a change's NOTIFY
   * once start() ran. 0 (the default) looks them up for every batch.
   */
  targetsCacheTtlMs?: number;
  /** Where the outbox's failed flushes and the operator listener's state are logged; silent when omitted. */
  log?: Logger;
}

/** Operators kept in memory at most: a fleet of this many reporting operators pays no lookup. */
const MOST_TARGETS_KEPT = 100_000;

/** How often the health event outbox is flushed besides after each batch. */
const EVENT_FLUSH_MS = 1000;

/** At most one report per busy (or idle) connector instance this often reaches its drain. */
const DRAIN_SIGNAL_EVERY_MS = 10_000;

export type IngestOutcome = { accepted: true; changed: boolean } | { accepted: false; reason: 'unknown_operator' };

/**
 * What happens to validated reports, whether they came from NATS or the internal API: log them
 * (one INSERT), cache the newest with each status change's `operator.health` event in the
 * outbox (one Redis round trip), signal the workflows that wait for them, then flush the outbox.
 * Every step is idempotent, so a caller that gets an error retries the whole batch and nothing is
 * lost or doubled; an event the flush could not publish stays in the outbox for the next one.
 *
 * Reports for an operator that does not exist (or is deleted) are neither logged nor cached:
 * a deleted operator's health key must stay gone, and a typo'd id must not fill the log.
 */
export class HealthPipeline {
  private readonly cache: HealthCache;
  /** Publishes the status changes the cache recorded; `start` it for retries on a timer. */
  readonly events: HealthEventOutbox;

  private readonly drainSignals: DrainSignalThrottle;
  /** The live operators' facts the batches need, by id. */
  private readonly targets: NotifiedCache<HealthTarget>;
  private readonly log: Logger;

  constructor(private readonly deps: HealthPipelineDeps) {
    this.log = deps.log ?? createLogger('silent');
    this.cache = new HealthCache(deps.redis);
    this.targets = new NotifiedCache(
      deps.db,
      this.log,
      OPERATOR_CHANGES_CHANNEL,
      deps.targetsCacheTtlMs ?? 0,
      MOST_TARGETS_KEPT,
    );
    this.drainSignals = new DrainSignalThrottle(
      Math.min(DRAIN_SIGNAL_EVERY_MS, ((deps.drainInstanceWindowS ?? 60) * 1000) / 2),
    );
    this.events = new HealthEventOutbox(deps, deps.eventSubject ?? HEALTH_SUBJECT);
  }

  /** The pipeline as a process runs it, on the process's configuration (health-main, the API's health route). */
  static configured(
    config: Config,
    clients: Pick<HealthPipelineDeps, 'db' | 'redis' | 'nats' | 'temporal'>,
    metrics: HealthMetrics,
    log: Logger,
  ): HealthPipeline {
    return new HealthPipeline({
      ...clients,
      metrics,
      log,
      drainInstanceWindowS: config.temporal.drainInstanceWindowS,
      targetsCacheTtlMs: config.health.targetsCacheTtlS * 1000,
    });
  }

  /** Flushes the event outbox every `eventFlushMs` besides after each batch; keeps operators in memory. */
  start(eventFlushMs = EVENT_FLUSH_MS): void {
    this.events.start(eventFlushMs, this.log);
    this.targets.start();
  }

  stop(): void {
    this.targets.stop();
    this.events.stop();
  }

  /** Outcomes in the order of `reports`. Throws when a dependency failed: retry the batch. */
  async ingest(reports: readonly ValidReport[]): Promise<IngestOutcome[]> {
    const { db, temporal } = this.deps;
    const targets = await this.targets.getMany([...new Set(reports.map((r) => r.report.operatorId))], (missing) =>
      findHealthTargets(db, missing),
    );
    const known = reports
      .map((valid, index) => ({ valid, index }))
      .filter(({ valid }) => targets.has(valid.report.operatorId))
      // Oldest first: the cache then sees every change in a batch, and signals keep the newest.
      .sort((a, b) => a.valid.reportedAtMs - b.valid.reportedAtMs);

    // The log and the cache at once: both are idempotent (a conflicting row is skipped, an older
    // or equal report never replaces the cached one), so a batch retried after one of them
    // failed writes nothing twice; the reports are acked only after both.
    const [, cached] = await Promise.all([
      insertHealthReports(
        db,
        known.map(({ valid }) => valid.report),
      ),
      this.cache.putNewest(
        known.map(({ valid }) => valid),
        this.events.key,
        (operatorId) => targets.get(operatorId)!.version,
      ),
    ]);
    const signals = this.drainSignals.keep(
      signalsFor(
        known.map(({ valid }) => valid),
        targets,
      ),
    );
    await sendSignals(temporal, signals).catch((err: unknown) => {
      this.drainSignals.unsent(signals);
      throw err;
    });

    // The events are safe in the outbox: the batch does not wait for NATS, and a failed flush
    // is retried by the next batch or the outbox's timer.
    void this.events.flush().catch(() => undefined);

    const expired = cached.filter((c) => c.write === 'expired').length;
    if (expired > 0) this.deps.metrics.expired.inc(expired);
    const outcomes: IngestOutcome[] = reports.map(() => ({ accepted: false, reason: 'unknown_operator' }));
    known.forEach(({ index }, i) => {
      outcomes[index] = { accepted: true, changed: cached[i]!.changed };
    });
    return outcomes;
  }

  /**
   * Whether PostgreSQL, Redis, NATS and Temporal answer now (each within a second): after a
   * failed batch, tells an outage (retry everything later) from reports that fail on their own.
   * Temporal counts: a report whose signal it cannot take must wait for it, not be dropped.
   */
  async dependenciesAnswer(): Promise<boolean> {
    const { db, redis, nats, temporal } = this.deps;
    const within = <T>(p: Promise<T>) =>
      Promise.race([
        p,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 1000).unref()),
      ]);
    try {
      await Promise.all([
        within(db.query('SELECT 1')),
        within(redis.ping()),
        within(nats.flush()),
        within(temporal.workflowService.getSystemInfo({})),
      ]);
      return true;
    } catch {
      return false;
    }
  }

  /** The cache as the routing engine reads it (for the admin API). */
  get healthCache(): HealthCache {
    return this.cache;
  }
}
