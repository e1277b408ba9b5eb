import { MockActivityEnvironment } from '@temporalio/testing';
import { withLockedOperator } from '../src/activities/shared';
import { createPool, type Db } from '../src/clients/postgres';
import { activityAttemptStart } from '../src/platform/activity-attempt';
import { loadConfig } from '../src/platform/config';
import { insertOperator } from './support/health-fixtures';

/**
 * An activity's transaction commits only within its attempt's start-to-close timeout (less a
 * second): past it Temporal has given the attempt up, and a commit then would land after a retry
 * or the workflow's compensation. On real PostgreSQL, in a mocked activity context with the
 * worker's attempt-start interceptor.
 */

describe("an activity's transaction and its attempt's timeout", () => {
  let db: Db;
  beforeAll(() => {
    db = createPool(loadConfig().postgres);
  });
  afterAll(() => db.end());

  const nameOf = async (id: string) =>
    (await db.query<{ name: string }>('SELECT name FROM ops.operators WHERE id = $1', [id])).rows[0]?.name;
  const rename = (id: string, name: string, holdS: number) =>
    withLockedOperator(db, id, async (op, tx) => {
      await tx.query('UPDATE ops.operators SET name = $2 WHERE id = $1', [id, name]);
      await tx.query('SELECT pg_sleep($1)', [holdS]);
      return op;
    });
  /** An attempt of 2.5 s: it may commit until 1.5 s after it began. */
  const attempt = () =>
    new MockActivityEnvironment({ startToCloseTimeoutMs: 2500 }, { interceptors: [activityAttemptStart] });

  it('commits within the attempt', async () => {
    const id = await insertOperator(db);
    await attempt().run(() => rename(id, 'In time', 0.1));
    expect(await nameOf(id)).toBe('In time');
  });

  it('rolls back a transaction that would commit after the attempt timed out, counting the time before it', async () => {
    const id = await insertOperator(db);
    const before = await nameOf(id);
    await expect(
      attempt().run(async () => {
        // The attempt's time before its transaction (a Vault call, say) counts too.
        await new Promise((r) => setTimeout(r, 1200));
        return rename(id, 'Too late', 0.5);
      }),
    ).rejects.toThrow(/start-to-close timeout; rolled back/);
    expect(await nameOf(id)).toBe(before);
  });
});
