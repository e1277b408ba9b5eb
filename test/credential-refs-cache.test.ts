import { createLogger } from '../src/platform/logger';
import { CredentialRefsCache } from '../src/services/credential-refs-cache';
import { createPool, type Db } from '../src/clients/postgres';
import { isolatedDatabase, type IsolatedDatabase } from './support/isolated-db';
import { countingPool } from './support/counting-pool';
import { eventually } from './support/eventually';
import { insertActiveOperator } from './support/outbox-fixtures';
import { changeListenerBackends } from './support/change-listeners';

/**
 * The credentials read's in-memory copy of which Vault version is in force, on real
 * PostgreSQL: kept while nothing changes, dropped at the commit of a rotation or a delete (the
 * trigger's NOTIFY), and never kept while its LISTEN connection is down. On a database of its
 * own: the service processes of other test files listen on the same channel.
 */

describe('credential refs cache', () => {
  let isolated: IsolatedDatabase;
  let db: Db;
  let cache: CredentialRefsCache;
  let counted: ReturnType<typeof countingPool>;
  const lookups = () => counted.count();

  const listenerBackends = () => changeListenerBackends(db);

  beforeAll(async () => {
    isolated = await isolatedDatabase();
    db = createPool(isolated.config);
    counted = countingPool(db, 'credentials-refs');
    cache = new CredentialRefsCache(counted.db, createLogger('silent'), 60_000);
    const before = await listenerBackends();
    cache.start();
    await eventually(async () => (await listenerBackends()).length > before.length, 'the cache listens');
  });
  afterAll(async () => {
    cache.stop();
    await db.end();
    await isolated.drop();
  });

  it('answers from memory until a rotation commits, then from PostgreSQL again', async () => {
    const id = await insertActiveOperator(db, 'test:refs-cache');
    await db.query('UPDATE ops.operators SET credentials_version = 1 WHERE id = $1', [id]);
    expect(await cache.get(id)).toEqual({ status: 'ACTIVE', credentialsVersion: 1, pendingCredentialsVersion: null });
    // That UPDATE's own NOTIFY may still be on its way and drop what this read kept; after it, reads
    // come from memory.
    await eventually(async () => {
      await cache.get(id);
      const before = lookups();
      expect(await cache.get(id)).toMatchObject({ credentialsVersion: 1 });
      return lookups() === before;
    }, 'a read answered from memory');

    // A rotation: the pending version set, then made current.
    await db.query('UPDATE ops.operators SET pending_credentials_version = 2 WHERE id = $1', [id]);
    await eventually(async () => (await cache.get(id))?.pendingCredentialsVersion === 2, 'pending version seen');
    await db.query(
      'UPDATE ops.operators SET credentials_version = 2, pending_credentials_version = NULL WHERE id = $1',
      [id],
    );
    await eventually(async () => (await cache.get(id))?.credentialsVersion === 2, 'rotation seen');
    expect(await cache.get(id)).toEqual({ status: 'ACTIVE', credentialsVersion: 2, pendingCredentialsVersion: null });
  });

  it('forgets a deleted or draining operator at once, and never keeps an unknown one', async () => {
    const id = await insertActiveOperator(db, 'test:refs-cache');
    expect(await cache.get(id)).toMatchObject({ status: 'ACTIVE' });
    await db.query(`UPDATE ops.operators SET status = 'DRAINING' WHERE id = $1`, [id]);
    await eventually(async () => (await cache.get(id))?.status === 'DRAINING', 'drain seen');
    await db.query('UPDATE ops.operators SET deleted_at = now() WHERE id = $1', [id]);
    await eventually(async () => (await cache.get(id)) === undefined, 'delete seen');

    const unknown = '00000000-0000-4000-8000-000000000000';
    const before = lookups();
    await cache.get(unknown);
    await cache.get(unknown);
    expect(lookups() - before).toBe(2);
  });

  it('keeps nothing while its LISTEN connection is down, and listens again', async () => {
    const id = await insertActiveOperator(db, 'test:refs-cache');
    expect(await cache.get(id)).toMatchObject({ credentialsVersion: null });
    const [listener] = await listenerBackends();
    // Waits until the backend is gone: the UPDATE below then commits while nobody listens.
    await db.query('SELECT pg_terminate_backend($1, 5000)', [listener]);
    // A change committed while nobody listens: no notification will ever say so.
    await db.query('UPDATE ops.operators SET credentials_version = 7 WHERE id = $1', [id]);
    await eventually(async () => (await cache.get(id))?.credentialsVersion === 7, 'change seen without a NOTIFY');
    await eventually(async () => {
      const pids = await listenerBackends();
      return pids.length > 0 && !pids.includes(listener as number);
    }, 'a new LISTEN connection');

    // Listening again, it keeps entries again.
    await eventually(async () => {
      await cache.get(id);
      const before = lookups();
      await cache.get(id);
      return lookups() === before;
    }, 'a read answered from memory again');
  });
});
