import type { Pool, PoolClient } from 'pg';

/**
 * The rotation's own column, `pending_credentials_version`: the Vault version a running rotation
 * waits for the connector to bind with. It changes in the same transaction as the rotation's
 * config change (commitChange), never alone.
 */

export async function pendingCredentialsVersion(db: Pool | PoolClient, operatorId: string): Promise<number | null> {
  const { rows } = await db.query<{ pending_credentials_version: number | null }>(
    'SELECT pending_credentials_version FROM ops.operators WHERE id = $1 AND deleted_at IS NULL',
    [operatorId],
  );
  return rows[0]?.pending_credentials_version ?? null;
}

export async function setPendingCredentialsVersion(
  tx: PoolClient,
  operatorId: string,
  version: number | null,
): Promise<void> {
  await tx.query('UPDATE ops.operators SET pending_credentials_version = $2 WHERE id = $1', [operatorId, version]);
}
