import { createPool, type Db } from '../src/clients/postgres';
import { healthMetrics } from '../src/health/metrics';
import { HealthPipeline } from '../src/health/pipeline';
import { loadConfig } from '../src/platform/config';
import { createLogger } from '../src/platform/logger';
import { createMetricsRegistry } from '../src/platform/metrics';
import { openResources, type Resources } from '../src/platform/resources';
import { countingPool } from './support/counting-pool';
import { insertOperator, report, waitUntil } from './support/health-fixtures';
import { isolatedDatabase, type IsolatedDatabase } from './support/isolated-db';
import { changeListenerBackends } from './support/change-listeners';

/**
 * Health ingestion keeps the operators its batches look up in memory (HEALTH_TARGETS_CACHE_TTL_S),
 * on real PostgreSQL: a batch for operators it knows asks PostgreSQL nothing, and a change to an
 * operator (a version bump, a drain, a delete) is seen by the batches after its commit's NOTIFY.
 * On a database of its own: the service processes of other test files listen on the same channel.
 */

describe('health ingestion: the operators it knows, in memory', () => {
  const config = loadConfig();
  let isolated: IsolatedDatabase;
  let db: Db;
  let resources: Resources;
  let counted: ReturnType<typeof countingPool>;
  let pipeline: HealthPipeline;
  const lookups = () => counted.count();
  const valid = (r: ReturnType<typeof report>) => ({ report: r, reportedAtMs: Date.parse(r.reportedAt) });
  const ingest = async (id: string) => (await pipeline.ingest([valid(report(id))]))[0];

  const listenerBackends = () => changeListenerBackends(db);

  /** Until a batch for `id` is answered from memory (the NOTIFY of its last change has passed). */
  const untilKept = (id: string) =>
    waitUntil(`operator ${id} kept in memory`, async () => {
      await ingest(id);
      const before = lookups();
      await ingest(id);
      return lookups() === before;
    });

  beforeAll(async () => {
    isolated = await isolatedDatabase();
    db = createPool(isolated.config);
    resources = await openResources(config, createLogger('silent'));
    counted = countingPool(db, 'health-targets');
    pipeline = new HealthPipeline({
      ...resources,
      db: counted.db,
      metrics: healthMetrics(createMetricsRegistry()),
      targetsCacheTtlMs: 60_000,
    });
    const before = await listenerBackends();
    pipeline.start(60_000);
    await waitUntil('the pipeline listens', async () => (await listenerBackends()).length > before.length);
  });
  afterAll(async () => {
    pipeline?.stop();
    await db?.end();
    await resources?.close();
    await isolated?.drop();
  });

  it('looks up an operator once, and again after each change to it', async () => {
    const id = await insertOperator(db);
    const first = lookups();
    expect(await ingest(id)).toEqual({ accepted: true, changed: true });
    expect(lookups()).toBe(first + 1);
    await untilKept(id);

    // Each change a batch depends on drops the operator: any change to the row (its updated_at,
    // which a drain's signals read), a config change (the version), a drain.
    for (const change of [
      `UPDATE ops.operators SET name = 'Renamed by hand' WHERE id = $1`,
      'UPDATE ops.operators SET version = version + 1 WHERE id = $1',
      `UPDATE ops.operators SET status = 'DRAINING' WHERE id = $1`,
    ]) {
      const before = lookups();
      await db.query(change, [id]);
      await waitUntil('the change looked up', async () => {
        await ingest(id);
        return lookups() > before;
      });
      await untilKept(id);
    }
  });

  it('sees a deleted operator as unknown, and never keeps an unknown one', async () => {
    const id = await insertOperator(db);
    await untilKept(id);
    await db.query('UPDATE ops.operators SET deleted_at = now() WHERE id = $1', [id]);
    await waitUntil('the delete seen', async () => (await ingest(id))?.accepted === false);

    const before = lookups();
    expect(await ingest(id)).toEqual({ accepted: false, reason: 'unknown_operator' });
    expect(await ingest(id)).toEqual({ accepted: false, reason: 'unknown_operator' });
    expect(lookups() - before).toBe(2);
  });

  it('forgets what it kept when its LISTEN connection is lost, and sees a change made meanwhile', async () => {
    const id = await insertOperator(db);
    await untilKept(id);
    const [listener] = await listenerBackends();
    expect(listener).toBeDefined();
    await db.query('SELECT pg_terminate_backend($1, 5000)', [listener]);
    // Deleted while nobody listens: no notification will ever say so; the next batch must look.
    await db.query('UPDATE ops.operators SET deleted_at = now() WHERE id = $1', [id]);
    await waitUntil('the delete seen without a NOTIFY', async () => (await ingest(id))?.accepted === false);
  });
});
