import { inTransaction, type Db } from '../clients/postgres';
import type { HealthStatus, OperatorStatus } from '../domain/operator';
import type { HealthReport } from '../health/report';

/** SQL for ops.operator_health_log and the operator facts health ingestion needs. */

export const HEALTH_ACTOR = 'system:health-worker';

/**
 * One statement for a whole batch. The unique index (operator_id, connector_instance,
 * reported_at) makes a redelivered report a no-op. Only operators live when it runs: one deleted
 * after its batch looked it up gets no row (as its cache key gets no write: the tombstone).
 * Returns how many rows were new.
 */
export async function insertHealthReports(db: Db, reports: readonly HealthReport[]): Promise<number> {
  if (reports.length === 0) return 0;
  // Named: PostgreSQL plans it once per connection, not for every batch (a batch of a few
  // reports cost more to plan than to insert).
  const result = await db.query({
    name: 'health-log-insert-live',
    text: `INSERT INTO ops.operator_health_log
       (operator_id, status, bound_sessions, inflight, credentials_version, connector_instance, reported_at,
        created_by, updated_by)
     SELECT r.*, $8, $8
       FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[], $5::int[], $6::text[], $7::timestamptz[])
            AS r (operator_id, status, bound_sessions, inflight, credentials_version, connector_instance, reported_at)
      WHERE r.operator_id IN (SELECT o.id FROM ops.operators o
                               WHERE o.id = ANY($1::uuid[]) AND o.deleted_at IS NULL)
     ON CONFLICT (operator_id, connector_instance, reported_at) DO NOTHING`,
    values: [
      reports.map((r) => r.operatorId),
      reports.map((r) => r.status),
      reports.map((r) => r.boundSessions),
      reports.map((r) => r.inflight),
      reports.map((r) => r.credentialsVersion),
      reports.map((r) => r.connectorInstance),
      reports.map((r) => r.reportedAt),
      HEALTH_ACTOR,
    ],
  });
  return result.rowCount ?? 0;
}

export interface HealthTarget {
  id: string;
  status: OperatorStatus;
  version: number;
  pendingCredentialsVersion: number | null;
  /**
   * When the row last changed: for a DRAINING operator, when its drain began or later (a metadata
   * or rule change since).
   */
  changedAtMs?: number;
}

/** The live operators among ids, with what decides which workflow waits for their reports. */
export async function findHealthTargets(db: Db, ids: readonly string[]): Promise<Map<string, HealthTarget>> {
  if (ids.length === 0) return new Map();
  const { rows } = await db.query<{
    id: string;
    status: OperatorStatus;
    version: string;
    pending_credentials_version: number | null;
    updated_at: Date;
  }>({
    name: 'health-targets',
    text: `SELECT id, status, version, pending_credentials_version, updated_at
             FROM ops.operators WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL`,
    values: [ids],
  });
  return new Map(
    rows.map((r) => [
      r.id,
      {
        id: r.id,
        status: r.status,
        version: Number(r.version),
        pendingCredentialsVersion: r.pending_credentials_version,
        changedAtMs: r.updated_at.getTime(),
      },
    ]),
  );
}

export interface HealthLogEntry {
  status: HealthStatus;
  boundSessions: number;
  inflight: number;
  credentialsVersion: number | null;
  connectorInstance: string;
  reportedAt: string;
}

/** The operator's latest reports, newest first. */
export async function recentHealth(db: Db, operatorId: string, limit: number): Promise<HealthLogEntry[]> {
  const { rows } = await db.query<{
    status: HealthStatus;
    bound_sessions: number;
    inflight: number;
    credentials_version: number | null;
    connector_instance: string;
    reported_at: Date;
  }>(
    `SELECT status, bound_sessions, inflight, credentials_version, connector_instance, reported_at
       FROM ops.operator_health_log WHERE operator_id = $1
      ORDER BY reported_at DESC, id DESC LIMIT $2`,
    [operatorId, limit],
  );
  return rows.map((r) => ({
    status: r.status,
    boundSessions: r.bound_sessions,
    inflight: r.inflight,
    credentialsVersion: r.credentials_version,
    connectorInstance: r.connector_instance,
    reportedAt: r.reported_at.toISOString(),
  }));
}

/** Each connector instance that reported for the operator since `since`, with its newest report. */
export async function recentReporters(
  db: Db,
  operatorId: string,
  since: Date,
): Promise<Array<{ connectorInstance: string; inflight: number; reportedAt: string }>> {
  const { rows } = await db.query<{ connector_instance: string; inflight: number; reported_at: Date }>(
    `SELECT DISTINCT ON (connector_instance) connector_instance, inflight, reported_at
       FROM ops.operator_health_log WHERE operator_id = $1 AND reported_at >= $2
      ORDER BY connector_instance, reported_at DESC, id DESC`,
    [operatorId, since],
  );
  return rows.map((r) => ({
    connectorInstance: r.connector_instance,
    inflight: r.inflight,
    reportedAt: r.reported_at.toISOString(),
  }));
}

/** Days of partitions created ahead, as src/db/housekeeping.ts does. */
const PARTITIONS_AHEAD_DAYS = 7;
/** Serialises partition DDL between health replicas (concurrent CREATE TABLE can collide). */
const HEALTH_LOG_MAINTENANCE_LOCK = 0x68_6c_6f_67; // "hlog"

/**
 * The health log's retention, run by the health process itself: tomorrow's partitions exist
 * before reports need them, and whole days older than `retentionDays` are dropped. Returns the
 * number of partitions dropped.
 */
export async function maintainHealthLog(db: Db, retentionDays: number): Promise<number> {
  return inTransaction(db, async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [HEALTH_LOG_MAINTENANCE_LOCK]);
    await tx.query('SELECT ops.ensure_health_log_partitions($1)', [PARTITIONS_AHEAD_DAYS]);
    const { rows } = await tx.query<{ n: number }>('SELECT ops.prune_health_log($1) AS n', [retentionDays]);
    return rows[0]?.n ?? 0;
  });
}
