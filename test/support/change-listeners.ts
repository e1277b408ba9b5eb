import type { Db } from '../../src/clients/postgres';
import { CHANGE_CHANNELS } from '../../src/db/change-feed';

/** The statement a pool's change feed listens with (src/db/change-feed.ts). */
const LISTEN_QUERY = CHANGE_CHANNELS.map((channel) => `LISTEN ${channel}`).join('; ');

/**
 * The backends of the database `db` is on that listen for the service's row changes, by the
 * statement that made them listen (until their first heartbeat, 10 s later).
 */
export async function changeListenerBackends(db: Db): Promise<number[]> {
  const { rows } = await db.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = $1`,
    [LISTEN_QUERY],
  );
  return rows.map((r) => r.pid);
}
