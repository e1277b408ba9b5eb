import type { Pool, PoolClient } from 'pg';

/**
 * For tests that stage a race with a lock of their own: hold it in a transaction, start the other
 * side, and let go only once that side is queued behind it. The wait is for sessions blocked by
 * the holder's backend (pg_blocking_pids), not for any lock wait: test files running beside this
 * one share the cluster and wait for locks of their own.
 */

/** The backend pid of a connection: what `waitUntilBlockedBy` knows a lock's holder by. */
export async function backendPid(client: PoolClient): Promise<number> {
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
  if (pid === undefined) throw new Error('pg_backend_pid() answered no row');
  return pid;
}

/**
 * Polls (every 10 ms, on another connection than the holder's) until some session waits for a
 * lock the backend `holder` holds, and returns the pids of those waiting; after `timeoutMs`,
 * throws `failure`, which says what never came.
 */
export async function waitUntilBlockedBy(
  db: Pool,
  holder: number,
  { timeoutMs = 10_000, failure }: { timeoutMs?: number; failure?: string } = {},
): Promise<number[]> {
  for (const until = Date.now() + timeoutMs; ; await new Promise((r) => setTimeout(r, 10))) {
    const { rows } = await db.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))',
      [holder],
    );
    if (rows.length > 0) return rows.map((r) => r.pid);
    if (Date.now() > until) throw new Error(failure ?? `no session waited for backend ${holder} in ${timeoutMs} ms`);
  }
}
