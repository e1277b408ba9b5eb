import { randomUUID } from 'node:crypto';
import { StringCodec } from 'nats';
import { createDrainActivities } from '../src/activities/drain';
import { insertHealthReports } from '../src/db/health-log';
import { healthKey, healthOutboxKey } from '../src/domain/health';
import { healthMetrics } from '../src/health/metrics';
import { HealthPipeline } from '../src/health/pipeline';
import { loadConfig } from '../src/platform/config';
import { createLogger } from '../src/platform/logger';
import { createMetricsRegistry } from '../src/platform/metrics';
import { openResources, type Resources } from '../src/platform/resources';
import {
  counterValue,
  insertOperator,
  logCount,
  report,
  startIngestion,
  waitUntil,
  type Ingestion,
} from './support/health-fixtures';

/**
 * What health ingestion promises under failure: no status change without its event, no report
 * that can hold back its batch forever, no health key for a deleted operator.
 */

describe('health ingestion under failure', () => {
  const config = loadConfig();
  let resources: Resources;

  beforeAll(async () => {
    resources = await openResources(config, createLogger('silent'));
  });
  afterAll(async () => {
    await resources?.close();
  });

  const valid = (r: ReturnType<typeof report>) => ({ report: r, reportedAtMs: Date.parse(r.reportedAt) });

  it('keeps a status change whose publish failed, even when a newer report arrives first', async () => {
    // A subject no stream takes yet: every publish fails until the stream exists.
    const subject = `ophealthtest.${randomUUID().slice(0, 8)}`;
    const pipeline = new HealthPipeline({
      ...resources,
      metrics: healthMetrics(createMetricsRegistry()),
      eventSubject: subject,
    });
    const id = await insertOperator(resources.db);
    const t0 = Date.now();
    const at = (s: number) => new Date(t0 + s * 1000).toISOString();

    await pipeline.ingest([valid(report(id, { status: 'UP', reportedAt: at(0) }))]);
    await pipeline.ingest([valid(report(id, { status: 'DOWN', reportedAt: at(1) }))]);
    // Newer and the same status: nothing changes, and the change before must not be forgotten.
    await pipeline.ingest([valid(report(id, { status: 'DOWN', reportedAt: at(2) }))]);
    await expect(pipeline.events.flush()).rejects.toThrow();
    expect(await resources.redis.xlen(healthOutboxKey(subject))).toBe(2);

    const jsm = await resources.nats.jetstreamManager();
    const stream = `HEALTHTEST_${randomUUID().slice(0, 8)}`;
    await jsm.streams.add({ name: stream, subjects: [subject] });
    try {
      expect(await pipeline.events.flush()).toBe(2);
      expect(await resources.redis.xlen(healthOutboxKey(subject))).toBe(0);
      const sc = StringCodec();
      const published = [];
      for (let seq = 1; seq <= (await jsm.streams.info(stream)).state.last_seq; seq++) {
        published.push(JSON.parse(sc.decode((await jsm.streams.getMessage(stream, { seq })).data)));
      }
      expect(published.map((e) => [e.operatorId, e.data.previousStatus, e.data.status])).toEqual([
        [id, null, 'UP'],
        [id, 'UP', 'DOWN'],
      ]);
    } finally {
      await jsm.streams.delete(stream);
      await resources.redis.del(healthOutboxKey(subject), healthKey(id));
    }
  });

  it('does not let a report write the health key again once the drain forgot it', async () => {
    const pipeline = new HealthPipeline({ ...resources, metrics: healthMetrics(createMetricsRegistry()) });
    const id = await insertOperator(resources.db, { status: 'DRAINING' });
    await pipeline.ingest([valid(report(id, { inflight: 0 }))]);
    expect(await resources.redis.exists(healthKey(id))).toBe(1);

    await createDrainActivities(resources).forgetHealth(id);
    // A report that passed its operator check before the soft delete committed.
    const [late] = await pipeline.ingest([valid(report(id, { inflight: 0 }))]);
    expect(late).toMatchObject({ accepted: true, changed: false });
    expect(await resources.redis.exists(healthKey(id))).toBe(0);
  });

  it('logs no row for an operator deleted by the time the insert runs', async () => {
    const id = await insertOperator(resources.db, { status: 'DRAINING' });
    await resources.db.query(`UPDATE ops.operators SET status = 'DELETED', deleted_at = now() WHERE id = $1`, [id]);
    // The batch's look-up said live; its insert runs after the soft delete committed.
    expect(await insertHealthReports(resources.db, [report(id, { inflight: 0 })])).toBe(0);
    expect(await logCount(resources.db, id)).toBe(0);
  });

  describe('a report that fails on its own', () => {
    let ingestion: Ingestion;
    beforeAll(async () => {
      ingestion = await startIngestion({ config, ...resources }, { retryDelayMs: 100, maxDeliveries: 3 });
    });
    afterAll(async () => {
      await ingestion?.stop();
    });

    it('is dropped after its last delivery while the reports around it are cached', async () => {
      const [bad, good, other] = await Promise.all([
        insertOperator(resources.db),
        insertOperator(resources.db),
        insertOperator(resources.db),
      ]);
      // A key of the wrong type: the cache's script fails for this operator and no other.
      await resources.redis.rpush(healthKey(bad), 'not a report');
      try {
        await Promise.all([bad, good, other].map((id) => ingestion.publish(id, report(id))));
        await waitUntil('the good reports cached', async () =>
          (await resources.redis.exists(healthKey(good), healthKey(other))) === 2 ? true : undefined,
        );
        await waitUntil('the bad report dropped', async () =>
          (await counterValue(ingestion.metrics.rejected, { reason: 'failed_repeatedly' })) === 1 ? true : undefined,
        );
        expect(await resources.redis.type(healthKey(bad))).toBe('list');
      } finally {
        await resources.redis.del(healthKey(bad), healthKey(good), healthKey(other));
      }
    });
  });
});
