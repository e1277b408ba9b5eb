import { once } from 'node:events';
import type { PoolClient } from 'pg';
import { createPool } from '../src/clients/postgres';
import { openRoutingSnapshot } from '../src/db/routing-snapshot';
import { loadConfig } from '../src/platform/config';

/** The snapshot's own connection, when its reader goes away in the middle of a part. */
describe('routing snapshot connection', () => {
  it('runs no query after its ROLLBACK when the reader goes away while a part is read', async () => {
    const pool = createPool({ ...loadConfig().postgres, poolMax: 1 });
    const ran: string[] = [];
    pool.on('acquire', (client: PoolClient) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      Object.assign(client, {
        query: (...args: unknown[]) => {
          const [sql] = args as [string | { text?: string; name?: string }];
          ran.push(typeof sql === 'string' ? sql : (sql.name ?? sql.text ?? '?'));
          return query(...args);
        },
      });
    });
    try {
      const { parts, close } = await openRoutingSnapshot(pool);
      const released = once(pool, 'release');
      const opened = ran.length;
      const first = parts.next(); // the operators, then their rules and tables, are read
      await close(); // the reader is gone while they run
      const atClose = [...ran];
      await released;
      await first;
      // A part's query was running when the reader left, and the connection was not given back under it.
      expect(atClose.length).toBeGreaterThan(opened);
      expect(atClose).not.toContain('ROLLBACK');
      expect(ran.at(-1)).toBe('ROLLBACK');
      expect(ran.filter((sql) => sql === 'ROLLBACK')).toHaveLength(1);
    } finally {
      await pool.end();
    }
  });
});
