import { randomUUID } from 'node:crypto';
import { loadConfig } from '../src/platform/config';
import { healthKey } from '../src/domain/health';
import { HEALTH_SUBJECT } from '../src/events/envelope';
import { createLogger } from '../src/platform/logger';
import { openResources, type Resources } from '../src/platform/resources';
import { EventWatcher } from './support/events';
import {
  counterValue,
  insertOperator,
  logCount,
  report,
  startIngestion,
  waitUntil,
  type Ingestion,
} from './support/health-fixtures';

/** Connector reports through JetStream into the log, the cache and operator.health. */

describe('health ingestion', () => {
  const config = loadConfig();
  let resources: Resources;
  let ingestion: Ingestion;
  let events: EventWatcher;

  beforeAll(async () => {
    resources = await openResources(config, createLogger('silent'));
    ingestion = await startIngestion({ config, ...resources });
    events = await EventWatcher.start(resources.nats, config.nats.stream, HEALTH_SUBJECT);
  });
  afterAll(async () => {
    await events?.stop();
    await ingestion?.stop();
    await resources?.close();
  });

  const cached = async (id: string) => {
    const raw = await resources.redis.get(healthKey(id));
    return raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
  };

  it('logs each report, caches it for at most 60 s, and publishes one operator.health per change', async () => {
    const id = await insertOperator(resources.db, { version: 7 });
    const first = report(id, { status: 'UP', boundSessions: 3 });
    await ingestion.publish(id, { ...first, extraField: 'stripped' });

    const value = await waitUntil('the cache key', () => cached(id));
    expect(value).toMatchObject({ ...first, previousStatus: null });
    expect(value).not.toHaveProperty('extraField');
    const ttl = await resources.redis.ttl(healthKey(id));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
    await waitUntil('the log row', async () => (await logCount(resources.db, id)) === 1);

    const [changed] = await events.waitFor(id, (e) => e.length >= 1);
    expect(changed).toMatchObject({
      type: 'operator.health',
      operatorId: id,
      version: 7,
      actor: 'system:health-worker',
      occurredAt: first.reportedAt,
      data: { status: 'UP', previousStatus: null, boundSessions: 3, inflight: 5, credentialsVersion: 1 },
    });
    expect(events.msgIdOf(changed!)).toBe(changed!.eventId);

    // Same status again: logged and cached, no event.
    const same = report(id, { status: 'UP', boundSessions: 4 });
    await ingestion.publish(id, same);
    await waitUntil('the second report cached', async () => (await cached(id))?.reportedAt === same.reportedAt);
    // A change: one more event, naming what it replaced.
    const down = report(id, { status: 'DOWN', boundSessions: 0 });
    await ingestion.publish(id, down);
    const published = await events.waitFor(id, (e) => e.length >= 2);
    await new Promise((r) => setTimeout(r, 500));
    expect(events.of(id)).toHaveLength(2);
    expect(published[1]?.data).toMatchObject({ status: 'DOWN', previousStatus: 'UP', reportedAt: down.reportedAt });
    expect(await logCount(resources.db, id)).toBe(3);
    expect(await counterValue(ingestion.metrics.consumed)).toBeGreaterThanOrEqual(3);
  });

  it('keeps the newest report in the cache when an older one arrives later', async () => {
    const id = await insertOperator(resources.db);
    const older = report(id, { status: 'DOWN', reportedAt: new Date(Date.now() - 5000).toISOString() });
    const newer = report(id, { status: 'UP', reportedAt: new Date(Date.now() - 1000).toISOString() });
    await ingestion.publish(id, newer);
    await ingestion.publish(id, older);
    await waitUntil('both logged', async () => (await logCount(resources.db, id)) === 2);
    expect(await cached(id)).toMatchObject({ status: 'UP', reportedAt: newer.reportedAt });
    // The late, older report changed nothing: one event (unknown -> UP) only.
    await new Promise((r) => setTimeout(r, 300));
    expect(events.of(id).map((e) => e.data.status)).toEqual(['UP']);
  });

  it('rejects and counts a malformed report without blocking the ones behind it', async () => {
    const id = await insertOperator(resources.db);
    const before = await counterValue(ingestion.metrics.rejected);
    await ingestion.publish(id, '{not json');
    await ingestion.publish(id, { ...report(id), inflight: -1 });
    await ingestion.publish(id, { ...report(id), operatorId: randomUUID() });
    const ghost = randomUUID();
    await ingestion.publish(ghost, report(ghost));
    const good = report(id, { status: 'DEGRADED' });
    await ingestion.publish(id, good);

    await waitUntil('the good report cached', async () => (await cached(id))?.reportedAt === good.reportedAt);
    await waitUntil('four rejections', async () => (await counterValue(ingestion.metrics.rejected)) - before === 4);
    expect(await counterValue(ingestion.metrics.rejected, { reason: 'invalid_json' })).toBeGreaterThanOrEqual(1);
    expect(await counterValue(ingestion.metrics.rejected, { reason: 'invalid_report' })).toBeGreaterThanOrEqual(1);
    expect(await counterValue(ingestion.metrics.rejected, { reason: 'operator_id_mismatch' })).toBeGreaterThanOrEqual(
      1,
    );
    expect(await counterValue(ingestion.metrics.rejected, { reason: 'unknown_operator' })).toBeGreaterThanOrEqual(1);
    expect(await logCount(resources.db, id)).toBe(1);

    // Rejected reports are terminated, not redelivered: nothing waits for an ack.
    const jsm = await resources.nats.jetstreamManager();
    await waitUntil('no report pending', async () => {
      const info = await jsm.consumers.info(ingestion.stream, ingestion.consumerName);
      return info.num_ack_pending === 0 && info.num_pending === 0;
    });
  });

  it('processes each report once in effect with two workers on the same durable', async () => {
    const second = await ingestion.replica();
    const ids = await Promise.all(Array.from({ length: 8 }, () => insertOperator(resources.db)));
    const consumedBefore = await counterValue(ingestion.metrics.consumed);
    const perOperator = 40;
    const base = Date.now() - 10_000;
    const all = ids.flatMap((id) =>
      Array.from({ length: perOperator }, (_, i) =>
        report(id, { status: 'UP', inflight: i, reportedAt: new Date(base + i * 10).toISOString() }),
      ),
    );
    await Promise.all(all.map((r) => ingestion.publish(r.operatorId, r)));

    const total = ids.length * perOperator;
    await waitUntil(
      'every report consumed',
      async () =>
        (await counterValue(ingestion.metrics.consumed)) -
          consumedBefore +
          (await counterValue(second.metrics.consumed)) ===
        total,
      30_000,
    );
    expect(await counterValue(second.metrics.consumed)).toBeGreaterThan(0);
    expect((await counterValue(ingestion.metrics.consumed)) - consumedBefore).toBeGreaterThan(0);
    for (const id of ids) {
      expect(await logCount(resources.db, id)).toBe(perOperator);
      // The newest report wins, whichever worker wrote last.
      expect(await cached(id)).toMatchObject({ inflight: perOperator - 1 });
    }
    await new Promise((r) => setTimeout(r, 500));
    for (const id of ids) expect(events.of(id)).toHaveLength(1);
  });

  it('logs a report made more than a minute ago but does not cache it, and counts it', async () => {
    // A consumer of its own: the shared one has a replica by now, with metrics of its own.
    const own = await startIngestion({ config, ...resources });
    try {
      const id = await insertOperator(resources.db);
      // A connector whose clock runs two minutes slow, or a backlog: it says nothing about now.
      await own.publish(id, report(id, { reportedAt: new Date(Date.now() - 120_000).toISOString() }));
      await waitUntil('the log row', async () => (await logCount(resources.db, id)) === 1);
      await waitUntil('the count', async () => (await counterValue(own.metrics.expired)) === 1);
      expect(await cached(id)).toBeUndefined();
    } finally {
      await own.stop();
    }
  });

  it('ignores a redelivered batch: no second log row, no second event', async () => {
    const id = await insertOperator(resources.db);
    const r = report(id, { status: 'AUTH_FAILED' });
    await ingestion.publish(id, r);
    await events.waitFor(id, (e) => e.length === 1);
    // As if the ack had been lost: the same report through the pipeline again.
    const outcomes = await ingestion.pipeline.ingest([{ report: r, reportedAtMs: Date.parse(r.reportedAt) }]);
    expect(outcomes).toEqual([{ accepted: true, changed: true }]);
    await new Promise((res) => setTimeout(res, 500));
    expect(await logCount(resources.db, id)).toBe(1);
    expect(events.of(id)).toHaveLength(1);
  });
  it('takes few reports off the stream while its batches are held: at most 100, not all 300', async () => {
    const small = await startIngestion({ config, ...resources }, { batchMax: 10 });
    // Every batch held in its writes, as a slow PostgreSQL would hold it.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    try {
      const ingest = small.pipeline.ingest.bind(small.pipeline);
      small.pipeline.ingest = async (reports) => {
        await released;
        return ingest(reports);
      };
      const id = await insertOperator(resources.db);
      const base = Date.now() - 10_000;
      const total = 300;
      for (let i = 0; i < total; i++)
        await small.publish(id, report(id, { inflight: i, reportedAt: new Date(base + i).toISOString() }));

      const jsm = await resources.nats.jetstreamManager();
      const info = () => jsm.consumers.info(small.stream, small.consumerName);
      // Two batches of 10 in flight, 30 queued, and what the client library buffers (10 more and
      // a pull's worth in transit): far from all 300.
      await waitUntil('the consumer to stop taking reports', async () => {
        const before = (await info()).num_ack_pending;
        await new Promise((r) => setTimeout(r, 300));
        const after = await info();
        return after.num_ack_pending === before && after.num_ack_pending > 0 ? after : undefined;
      });
      const held = await info();
      expect(held.num_ack_pending).toBeLessThanOrEqual(100);
      expect(held.num_pending).toBeGreaterThanOrEqual(total - 100);

      release();
      await waitUntil('every report logged', async () => (await logCount(resources.db, id)) === total, 30_000);
      expect(await cached(id)).toMatchObject({ inflight: total - 1 });
    } finally {
      release();
      await small.stop();
    }
  });
});
