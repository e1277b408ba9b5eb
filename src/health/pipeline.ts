import type { Client } from '@temporalio/client';
import type { NatsConnection } from 'nats';
import type { Redis } from 'ioredis';
import type { Db } from '../clients/postgres';
import { findHealthTargets, insertHealthReports } from '../db/health-log';
import { HEALTH_SUBJECT } from '../events/envelope';
import { HealthCache } from './cache';
import { healthChangedEvent } from './events';
import type { HealthMetrics } from './metrics';
import type { ValidReport } from './report';
import { sendSignals, signalsFor } from './signals';

export interface HealthPipelineDeps {
  db: Db;
  redis: Redis;
  nats: NatsConnection;
  temporal: Client;
  metrics: HealthMetrics;
  /** Where status changes go; the OPERATOR_EVENTS stream covers `operator.health`. */
  eventSubject?: string;
}

export type IngestOutcome = { accepted: true; changed: boolean } | { accepted: false; reason: 'unknown_operator' };

/**
 * What happens to validated reports, whether they came from NATS or the internal API: log them
 * (one INSERT), cache the newest (one Redis round trip), publish `operator.health` for each
 * status change, signal the workflows that wait for them. Every step is idempotent, so a caller
 * that gets an error retries the whole batch and nothing is lost or doubled.
 *
 * Reports for an operator that does not exist (or is deleted) are neither logged nor cached:
 * a deleted operator's health key must stay gone, and a typo'd id must not fill the log.
 */
export class HealthPipeline {
  private readonly cache: HealthCache;
  private readonly eventSubject: string;

  constructor(private readonly deps: HealthPipelineDeps) {
    this.cache = new HealthCache(deps.redis);
    this.eventSubject = deps.eventSubject ?? HEALTH_SUBJECT;
  }

  /** Outcomes in the order of `reports`. Throws when a dependency failed: retry the batch. */
  async ingest(reports: readonly ValidReport[]): Promise<IngestOutcome[]> {
    const { db, nats, temporal, metrics } = this.deps;
    const targets = await findHealthTargets(db, [...new Set(reports.map((r) => r.report.operatorId))]);
    const known = reports
      .map((valid, index) => ({ valid, index }))
      .filter(({ valid }) => targets.has(valid.report.operatorId))
      // Oldest first: the cache then sees every change in a batch, and signals keep the newest.
      .sort((a, b) => a.valid.reportedAtMs - b.valid.reportedAtMs);

    await insertHealthReports(
      db,
      known.map(({ valid }) => valid.report),
    );
    const cached = await this.cache.putNewest(known.map(({ valid }) => valid));

    const js = nats.jetstream();
    await Promise.all(
      known.map(async ({ valid }, i) => {
        const outcome = cached[i]!;
        if (!outcome.changed) return;
        const event = healthChangedEvent(
          valid.report,
          outcome.previousStatus,
          targets.get(valid.report.operatorId)!.version,
        );
        await js.publish(this.eventSubject, JSON.stringify(event), { msgID: event.eventId });
        metrics.statusChanges.inc();
      }),
    );
    await sendSignals(
      temporal,
      signalsFor(
        known.map(({ valid }) => valid),
        targets,
      ),
    );

    const outcomes: IngestOutcome[] = reports.map(() => ({ accepted: false, reason: 'unknown_operator' }));
    known.forEach(({ index }, i) => {
      outcomes[index] = { accepted: true, changed: cached[i]!.changed };
    });
    return outcomes;
  }

  /** The cache as the routing engine reads it (for the admin API). */
  get healthCache(): HealthCache {
    return this.cache;
  }
}
