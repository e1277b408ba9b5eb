import type { Db } from '../clients/postgres';
import { maintainHealthLog } from './health-log';

export interface HousekeepingResult {
  healthPartitionsDropped: number;
  idempotencyKeysDeleted: number;
  outboxRowsDeleted: number;
}

/** How long a replayable POST answer is kept: a client retry comes within minutes, not days. */
const IDEMPOTENCY_TTL = '24 hours';
/** Published events stay a while for forensics; JetStream keeps its own copy for consumers. */
const OUTBOX_RETENTION = '7 days';

/**
 * Keeps the fast-growing tables bounded. Safe to run from every replica at once: the deletes are
 * idempotent and the health log's partition DDL runs under its advisory lock. Unpublished outbox
 * rows are never touched.
 */
export async function runHousekeeping(db: Db, healthLogRetentionDays: number): Promise<HousekeepingResult> {
  const healthPartitionsDropped = await maintainHealthLog(db, healthLogRetentionDays);
  const keys = await db.query(
    `DELETE FROM ops.idempotency_keys WHERE created_at < now() - interval '${IDEMPOTENCY_TTL}'`,
  );
  const outbox = await db.query(
    `DELETE FROM ops.event_outbox WHERE published_at IS NOT NULL AND published_at < now() - interval '${OUTBOX_RETENTION}'`,
  );
  return {
    healthPartitionsDropped,
    idempotencyKeysDeleted: keys.rowCount ?? 0,
    outboxRowsDeleted: outbox.rowCount ?? 0,
  };
}
