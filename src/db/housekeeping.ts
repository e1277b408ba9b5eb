import type { Db } from '../clients/postgres';

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
 * Keeps the fast-growing tables bounded. Safe to run from every replica at once: each statement
 * is idempotent. Unpublished outbox rows are never touched.
 */
export async function runHousekeeping(db: Db, healthLogRetentionDays: number): Promise<HousekeepingResult> {
  await db.query('SELECT ops.ensure_health_log_partitions(7)');
  const pruned = await db.query<{ n: number }>('SELECT ops.prune_health_log($1) AS n', [healthLogRetentionDays]);
  const keys = await db.query(
    `DELETE FROM ops.idempotency_keys WHERE created_at < now() - interval '${IDEMPOTENCY_TTL}'`,
  );
  const outbox = await db.query(
    `DELETE FROM ops.event_outbox WHERE published_at IS NOT NULL AND published_at < now() - interval '${OUTBOX_RETENTION}'`,
  );
  return {
    healthPartitionsDropped: pruned.rows[0]?.n ?? 0,
    idempotencyKeysDeleted: keys.rowCount ?? 0,
    outboxRowsDeleted: outbox.rowCount ?? 0,
  };
}
