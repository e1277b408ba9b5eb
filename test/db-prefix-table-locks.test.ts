import { randomUUID } from 'node:crypto';
import { createPool, inTransaction, type Db } from '../src/clients/postgres';
import { findPrefixTable, insertPrefixTable, lockPrefixTables, softDeletePrefixTable } from '../src/db/prefix-tables';
import { loadConfig } from '../src/platform/config';
import { backendPid, waitUntilBlockedBy } from './support/pg-locks';

/**
 * The locks a rule write (`use`) and an onboarding's save (`keep`) take on the tables their rules
 * name. `recordOperatorCreated` waits longer than the pool's lock timeout for an import holding a
 * table; that longer wait must end with the table lock, not cover the operator's lock after it.
 */
describe('prefix table locks', () => {
  const config = loadConfig().postgres;
  let db: Db;

  beforeAll(() => {
    db = createPool(config);
  });
  afterAll(async () => {
    await db.end();
  });

  const newTable = async () => {
    const id = randomUUID();
    await insertPrefixTable(db, { id, name: `locks ${id}`, description: '' }, 'test:locks');
    return id;
  };

  it('waits waitMs, past the pool lock timeout, for a table another transaction holds; then the pool timeout applies again', async () => {
    // A pool whose lock timeout is short: a wait that outlasts it shows waitMs applied.
    const short = createPool({ ...config, lockTimeoutMs: 200 });
    const id = await newTable();
    const holder = await db.connect();
    try {
      await holder.query('BEGIN');
      await findPrefixTable(holder, id, 'delete');
      await expect(inTransaction(short, (tx) => lockPrefixTables(tx, [id], 'use'))).rejects.toMatchObject({
        code: '55P03',
      });
      const locking = inTransaction(short, async (tx) => {
        const locked = await lockPrefixTables(tx, [id], 'use', { waitMs: 20_000 });
        const { rows } = await tx.query<{ ms: string }>(
          `SELECT (extract(epoch FROM current_setting('lock_timeout')::interval) * 1000)::int::text AS ms`,
        );
        return { locked: [...locked], lockTimeoutMs: Number(rows[0]?.ms) };
      });
      // Queued behind the holder, and still queued three pool timeouts later.
      const holderPid = await backendPid(holder);
      const [waiter] = await waitUntilBlockedBy(db, holderPid);
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(await waitUntilBlockedBy(db, holderPid, { timeoutMs: 0 })).toEqual([waiter]);
      await holder.query('ROLLBACK');
      const after = await locking;
      expect(after).toEqual({ locked: [id], lockTimeoutMs: 200 });
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
      await short.end();
    }
  });

  it('returns only the live tables among those named, for either lock', async () => {
    const live = await newTable();
    const deleted = await newTable();
    await inTransaction(db, (tx) => softDeletePrefixTable(tx, deleted, 'test:locks'));
    for (const lock of ['use', 'keep'] as const) {
      const locked = await inTransaction(db, (tx) => lockPrefixTables(tx, [deleted, live, randomUUID()], lock));
      expect([...locked]).toEqual([live]);
    }
  });

  it('keep does not wait for an entries change holding the table; use does', async () => {
    const id = await newTable();
    const importer = await db.connect();
    try {
      await importer.query('BEGIN');
      await findPrefixTable(importer, id, 'change');
      const kept = await inTransaction(db, (tx) => lockPrefixTables(tx, [id], 'keep', { waitMs: 100 }));
      expect([...kept]).toEqual([id]);
      await expect(inTransaction(db, (tx) => lockPrefixTables(tx, [id], 'use', { waitMs: 100 }))).rejects.toMatchObject(
        { code: '55P03' },
      );
    } finally {
      await importer.query('ROLLBACK');
      importer.release();
    }
  });
});
