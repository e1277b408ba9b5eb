import { randomUUID } from 'node:crypto';
import { createPool, inTransaction, type Db } from '../src/clients/postgres';
import { createRedis, type Redis } from '../src/clients/redis';
import { HealthCache } from '../src/health/cache';
import { HealthStatusView } from '../src/health/status-view';
import { loadConfig } from '../src/platform/config';
import { createLogger } from '../src/platform/logger';
import { RoutingExplainService, type Explanation } from '../src/services/routing-explain';
import { countingPool } from './support/counting-pool';
import { eventually } from './support/eventually';
import { isolatedDatabase, type IsolatedDatabase } from './support/isolated-db';
import { insertActiveOperator } from './support/outbox-fixtures';
import { changeListenerBackends } from './support/change-listeners';

/**
 * Route explain's in-memory rules on real PostgreSQL: what it read is answered from memory (a
 * change made with triggers off stays unseen), and every kind of change a rule, a table or an
 * operator can undergo is seen once it commits (its NOTIFY). On a database of its own: the
 * service processes of other test files would otherwise notify and listen on the same channel.
 */

const ACTOR = 'test:explain-cache';
/** Health read from Redis every time: what is kept of it is test/health-status-view.test.ts's. */
const healthOf = (redis: Redis) => new HealthStatusView(redis, new HealthCache(redis), createLogger('silent'), 0);
const NUMBER = '770123456';

describe('route explain keeps the rules in memory', () => {
  let isolated: IsolatedDatabase;
  let db: Db;
  let redis: Redis;
  let explain: RoutingExplainService;
  let counted: ReturnType<typeof countingPool>;
  let tableId: string;
  let [a, b, ruleA, ruleB] = ['', '', '', ''];

  const now = () => explain.explain(NUMBER, new Date());
  const candidates = (e: Explanation) =>
    e.ranks.flatMap((r) => r.groups.flatMap((g) => g.candidates.map((c) => c.rule)));
  const ruleOf = async (id: string) => candidates(await now()).find((r) => r.ruleId === id);
  const excludedOf = async (id: string) => (await now()).excluded.find((e) => e.rule.ruleId === id)?.reason;
  /** A change the cache is not told of: triggers off for its transaction (as a replica applies changes). */
  const unnotified = (sql: string, values: unknown[]) =>
    inTransaction(db, async (tx) => {
      await tx.query('SET LOCAL session_replication_role = replica');
      await tx.query(sql, values);
    });
  const insertRule = async (
    operatorId: string,
    target: { table: string } | { prefixes: string[] },
    priority: number,
  ) => {
    const id = randomUUID();
    await db.query(
      `INSERT INTO ops.routing_rules (id, operator_id, prefix_table_id, prefixes, priority, weight, cost_per_segment,
                                      currency, created_by, updated_by)
       VALUES ($1, $2, $3, $4, $5, 100, 0.01, 'EUR', $6, $6)`,
      [
        id,
        operatorId,
        'table' in target ? target.table : null,
        'prefixes' in target ? target.prefixes : null,
        priority,
        ACTOR,
      ],
    );
    return id;
  };

  beforeAll(async () => {
    isolated = await isolatedDatabase();
    db = createPool(isolated.config);
    redis = createRedis(loadConfig().redis);
    counted = countingPool(db, 'routing-explain-table-rules');
    explain = new RoutingExplainService({
      db: counted.db,
      health: healthOf(redis),
      log: createLogger('silent'),
      cacheTtlMs: 60_000,
    });
    [a, b] = [await insertActiveOperator(db, ACTOR), await insertActiveOperator(db, ACTOR)];
    tableId = randomUUID();
    await db.query(
      `INSERT INTO ops.prefix_tables (id, name, created_by, updated_by) VALUES ($1, 'explain cache', $2, $2)`,
      [tableId, ACTOR],
    );
    await db.query(
      `INSERT INTO ops.prefix_table_entries (prefix_table_id, prefix, created_by, updated_by)
       SELECT $1, p, $2, $2 FROM unnest(ARRAY['7701', '77012']) AS p`,
      [tableId, ACTOR],
    );
    ruleA = await insertRule(a, { table: tableId }, 1);
    ruleB = await insertRule(b, { prefixes: ['770', '7'] }, 2);
    explain.start();
    await eventually(async () => (await changeListenerBackends(db)).length === 1, 'explain listens');
  });

  afterAll(async () => {
    explain.stop();
    await Promise.all([db.end(), redis.quit()]);
    await isolated.drop();
  });

  it('answers from memory until a change commits', async () => {
    expect(await ruleOf(ruleA)).toMatchObject({
      priority: 1,
      matchedPrefix: '77012',
      source: { kind: 'table', prefixTableId: tableId, prefixTableName: 'explain cache' },
    });
    expect(await ruleOf(ruleB)).toMatchObject({ priority: 2, matchedPrefix: '770', source: { kind: 'inline' } });
    await eventually(async () => {
      await now();
      const before = counted.count();
      await now();
      return counted.count() === before;
    }, 'an explain answered from memory');

    await unnotified('UPDATE ops.routing_rules SET priority = 9 WHERE id = $1', [ruleA]);
    await unnotified('UPDATE ops.routing_rules SET priority = 8 WHERE id = $1', [ruleB]);
    await unnotified(`UPDATE ops.operators SET name = 'unseen' WHERE id = $1`, [b]);
    expect(await ruleOf(ruleA)).toMatchObject({ priority: 1 });
    expect(await ruleOf(ruleB)).toMatchObject({ priority: 2, operatorName: expect.not.stringMatching('unseen') });
    await db.query('UPDATE ops.routing_rules SET priority = 3 WHERE id = $1', [ruleA]);
    await eventually(async () => expect(await ruleOf(ruleA)).toMatchObject({ priority: 3 }));
    await db.query('UPDATE ops.routing_rules SET priority = 2 WHERE id = $1', [ruleB]);
  });

  it('sees each change to a rule, its table or its operator once it commits', async () => {
    await db.query(`UPDATE ops.prefix_tables SET name = 'renamed' WHERE id = $1`, [tableId]);
    await eventually(async () => expect((await ruleOf(ruleA))?.source).toMatchObject({ prefixTableName: 'renamed' }));

    await db.query(`UPDATE ops.operators SET status = 'DRAINING' WHERE id = $1`, [b]);
    await eventually(async () => expect(await excludedOf(ruleB)).toBe('operator_not_active'));
    await db.query(`UPDATE ops.operators SET name = 'renamed b', status = 'ACTIVE' WHERE id = $1`, [b]);
    await eventually(async () => expect(await ruleOf(ruleB)).toMatchObject({ operatorName: 'renamed b' }));

    const added = await insertRule(a, { prefixes: ['7701'] }, 4);
    await eventually(async () => expect(await ruleOf(added)).toMatchObject({ matchedPrefix: '7701' }));

    // From the table to inline prefixes: both the table's rules and the inline ones change.
    await db.query(`UPDATE ops.routing_rules SET prefix_table_id = NULL, prefixes = ARRAY['77'] WHERE id = $1`, [
      ruleA,
    ]);
    await eventually(async () =>
      expect(await ruleOf(ruleA)).toMatchObject({ matchedPrefix: '77', source: { kind: 'inline' } }),
    );
    await db.query(`UPDATE ops.routing_rules SET prefix_table_id = $2, prefixes = NULL WHERE id = $1`, [
      ruleA,
      tableId,
    ]);
    await eventually(async () => expect((await ruleOf(ruleA))?.source.kind).toBe('table'));

    await db.query('UPDATE ops.routing_rules SET enabled = false WHERE id = $1', [added]);
    await eventually(async () => expect(await excludedOf(added)).toBe('disabled'));
    await db.query('UPDATE ops.routing_rules SET deleted_at = now() WHERE id = $1', [added]);
    await eventually(async () => expect(await excludedOf(added)).toBeUndefined());

    await db.query('UPDATE ops.prefix_tables SET deleted_at = now() WHERE id = $1', [tableId]);
    await eventually(async () => expect(await ruleOf(ruleA)).toBeUndefined());

    await db.query(`UPDATE ops.operators SET status = 'DELETED', deleted_at = now() WHERE id = $1`, [b]);
    await eventually(async () => expect(await ruleOf(ruleB)).toBeUndefined());
    expect(await excludedOf(ruleB)).toBeUndefined();
  });

  it('keeps nothing when its time in memory is 0', async () => {
    const uncached = new RoutingExplainService({
      db,
      health: healthOf(redis),
      log: createLogger('silent'),
      cacheTtlMs: 0,
    });
    uncached.start();
    try {
      const rule = await insertRule(a, { prefixes: ['7'] }, 6);
      const priority = async () =>
        candidates(await uncached.explain(NUMBER, new Date())).find((r) => r.ruleId === rule)?.priority;
      expect(await priority()).toBe(6);
      await unnotified('UPDATE ops.routing_rules SET priority = 8 WHERE id = $1', [rule]);
      expect(await priority()).toBe(8);
    } finally {
      uncached.stop();
    }
  });
});
