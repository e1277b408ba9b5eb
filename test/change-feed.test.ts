import { createPool, type Db } from '../src/clients/postgres';
import { NotifiedCache } from '../src/db/notified-cache';
import { CREDENTIAL_CHANGES_CHANNEL, ROUTING_CHANGES_CHANNEL } from '../src/db/change-feed';
import { createLogger } from '../src/platform/logger';
import { changeListenerBackends } from './support/change-listeners';
import { eventually } from './support/eventually';
import { isolatedDatabase, type IsolatedDatabase } from './support/isolated-db';

/**
 * A process's in-memory copies share one listening connection per pool (src/db/change-feed.ts):
 * each hears only its own channel, and the connection is given back with the last of them. On
 * a database of its own, so that no other test file's process listens or notifies there.
 */

describe('change feed', () => {
  let isolated: IsolatedDatabase;
  let db: Db;
  const log = createLogger('silent');

  beforeAll(async () => {
    isolated = await isolatedDatabase();
    db = createPool(isolated.config);
  });
  afterAll(async () => {
    await db.end();
    await isolated.drop();
  });

  it('listens once for every copy on a pool, tells each its own changes, and lets go with the last', async () => {
    const credentials = new NotifiedCache<string>(db, log, CREDENTIAL_CHANGES_CHANNEL, 60_000);
    const routing = new NotifiedCache<string>(db, log, ROUTING_CHANGES_CHANNEL, 60_000);
    const loads: string[] = [];
    const read = (cache: NotifiedCache<string>, name: string) =>
      cache.get('k', async () => {
        loads.push(name);
        return `${name} ${loads.length}`;
      });
    /** Until a NOTIFY on the routing channel makes the routing copy read its key again. */
    const routingHears = async () => {
      const before = loads.length;
      await db.query(`SELECT pg_notify($1, 'k')`, [ROUTING_CHANGES_CHANNEL]);
      await eventually(async () => {
        await read(routing, 'routing');
        return loads.length > before;
      }, 'the routing copy drops its key');
      return loads.slice(before);
    };
    const pidAlive = async (pid: number) =>
      (await db.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rows.length === 1;
    try {
      credentials.start();
      routing.start();
      await eventually(async () => (await changeListenerBackends(db)).length === 1, 'one connection listens');
      const [listener] = await changeListenerBackends(db);
      // Kept once the feed listens (a read before that is not).
      await eventually(async () => {
        await Promise.all([read(credentials, 'credentials'), read(routing, 'routing')]);
        const before = loads.length;
        await Promise.all([read(credentials, 'credentials'), read(routing, 'routing')]);
        return loads.length === before;
      }, 'both answer from memory');

      expect(await routingHears()).toEqual(['routing']);
      await read(credentials, 'credentials');
      expect(loads.at(-1)).toBe('routing'); // the credentials copy kept its key
      expect(await changeListenerBackends(db)).toEqual([listener]);

      // One copy gone: the other still hears on the same connection.
      credentials.stop();
      expect(await routingHears()).toEqual(['routing']);
      expect(await changeListenerBackends(db)).toEqual([listener]);
      routing.stop();
      await eventually(async () => !(await pidAlive(listener!)), 'the connection given back and closed');
    } finally {
      credentials.stop();
      routing.stop();
    }
  });
});
