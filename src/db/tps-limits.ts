import { randomUUID } from 'node:crypto';
import type { PoolClient } from 'pg';
import type { TpsLimit } from '../domain/operator';

/** SQL for an operator's TPS limit: one live row per operator, replaced by soft delete and insert. */
export async function replaceTpsLimit(
  tx: PoolClient,
  operatorId: string,
  limit: TpsLimit,
  actor: string,
): Promise<void> {
  await tx.query(
    'UPDATE ops.tps_limits SET deleted_at = now(), updated_by = $2 WHERE operator_id = $1 AND deleted_at IS NULL',
    [operatorId, actor],
  );
  await tx.query(
    `INSERT INTO ops.tps_limits (id, operator_id, tps_cap, burst_window_ms, enforcement_mode, created_by, updated_by)
     VALUES ($1, $2, $3, $4, $5, $6, $6)`,
    [randomUUID(), operatorId, limit.tpsCap, limit.burstWindowMs, limit.enforcementMode, actor],
  );
}
