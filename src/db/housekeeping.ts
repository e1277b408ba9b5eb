import type { Db } from '../clients/postgres';
import { maintainHealthLog } from './health-log';

export interface HousekeepingResult {
  healthPartitionsDropped: number;
  idempotencyKeysDeleted: number;
  outboxRowsDeleted: number;
  /** Unpublished outbox rows the relay's queue lacked (written with triggers off: a restore, a replica). */
  outboxRowsRequeued: number;
}

/** How long a replayable POST answer is kept: a client retry comes within minutes, not days. */
const IDEMPOTENCY_TTL = '24 hours';
/** Published events stay a while for forensics; JetStream keeps its own copy for consumers. */
const OUTBOX_RETENTION = '7 days';

/**
 * Keeps the fast-growing tables bounded. Safe to run from every replica at once: the deletes are
 * idempotent and the health log's partition DDL runs under its advisory lock. Unpublished outbox
 * rows are never deleted; any the relay's queue lacks are queued.
 */
export async function runHousekeeping(db: Db, healthLogRetentionDays: number): Promise<HousekeepingResult> {
  const healthPartitionsDropped = await maintainHealthLog(db, healthLogRetentionDays);
  const keys = await db.query(
    `DELETE FROM ops.idempotency_keys WHERE created_at < now() - interval '${IDEMPOTENCY_TTL}'`,
  );
  const outbox = await db.query(
    `DELETE FROM ops.event_outbox WHERE published_at IS NOT NULL AND published_at < now() - interval '${OUTBOX_RETENTION}'`,
  );
  // Every insert queues its row (a trigger); only a write that bypassed triggers leaves one out,
  // and the relay would never see it.
  const requeued = await db.query(
    `INSERT INTO ops.event_outbox_pending (id)
     SELECT o.id FROM ops.event_outbox o
      WHERE o.published_at IS NULL AND NOT EXISTS (SELECT 1 FROM ops.event_outbox_pending p WHERE p.id = o.id)
     ON CONFLICT DO NOTHING`,
  );
  return {
    healthPartitionsDropped,
    idempotencyKeysDeleted: keys.rowCount ?? 0,
    outboxRowsDeleted: outbox.rowCount ?? 0,
    outboxRowsRequeued: requeued.rowCount ?? 0,
  };
}
