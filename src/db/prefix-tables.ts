import type { Pool, PoolClient } from 'pg';

/** SQL for prefix tables. Every read excludes soft-deleted rows. */

/** The ids among `ids` that name a live prefix table. */
export async function findLivePrefixTableIds(db: Pool | PoolClient, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>(
    'SELECT id FROM ops.prefix_tables WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL',
    [ids],
  );
  return new Set(rows.map((r) => r.id));
}
