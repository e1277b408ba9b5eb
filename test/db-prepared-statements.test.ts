import { createPool, type Db } from '../src/clients/postgres';
import { findOperator } from '../src/db/operators';
import { isolatedDatabase, type IsolatedDatabase } from './support/isolated-db';
import { commitRename, insertActiveOperator } from './support/outbox-fixtures';

/**
 * An operator's read and its change are named statements, prepared once per connection. A
 * migration that adds a column while a replica runs must not break them: PostgreSQL re-plans a
 * prepared statement after DDL but refuses one whose result changed shape. One that changes a
 * selected column's type fails a statement once per connection, whose connection is then closed.
 * On a database of its own: the ALTER TABLE would lock the shared one under the other test files.
 */
describe('prepared statements across a migration', () => {
  let isolated: IsolatedDatabase;
  let db: Db;

  beforeAll(async () => {
    isolated = await isolatedDatabase();
    // One connection: what it prepared before the ALTER is what it runs after.
    db = createPool({ ...isolated.config, poolMax: 1 });
  });
  afterAll(async () => {
    await db.end();
    await isolated.drop();
  });

  it('reads and changes an operator on the same connection after a column was added', async () => {
    const id = await insertActiveOperator(db, 'prepared-test');
    // Prepared on this connection before the ALTER: the read, the locked read and the change.
    await findOperator(db, id);
    await commitRename(db, id, 'prepared-test');

    await db.query('ALTER TABLE ops.operators ADD COLUMN region text');

    // With `o.*` in the read, this fails with "cached plan must not change result type".
    expect(await findOperator(db, id)).toMatchObject({ id, version: 2 });
    await commitRename(db, id, 'prepared-test');
    expect(await findOperator(db, id)).toMatchObject({ id, version: 3, name: 'prepared-test v3' });
  });

  it('answers again after a migration changed a selected column, on a fresh connection', async () => {
    const id = await insertActiveOperator(db, 'prepared-test');
    await commitRename(db, id, 'prepared-test');
    const connection = async () => (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
    const before = await connection();

    // A selected column's type changes: statements prepared before it fail once on their connection.
    await db.query('ALTER TABLE ops.operators ALTER COLUMN status_reason TYPE varchar(500)');

    await expect(commitRename(db, id, 'prepared-test')).rejects.toThrow(/cached plan must not change result type/);
    // The connection that held the stale statements was closed, not pooled again.
    expect(await connection()).not.toBe(before);
    await commitRename(db, id, 'prepared-test');
    expect(await findOperator(db, id)).toMatchObject({ id, version: 3 });
  });
});
