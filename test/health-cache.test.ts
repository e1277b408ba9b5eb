import { randomUUID } from 'node:crypto';
import { createRedis, type Redis } from '../src/clients/redis';
import { healthKey, healthTombstoneKey } from '../src/domain/health';
import { problemsOf } from '../src/events/catalog';
import { HealthCache } from '../src/health/cache';
import type { HealthReport, ValidReport } from '../src/health/report';
import { loadConfig } from '../src/platform/config';

/**
 * The cache's script on real Redis, batches larger than one call's chunk included: each report
 * answered in order, an event only for a change, made in the script with a stable id.
 */

const UUID_V8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('health cache writes', () => {
  let redis: Redis;
  let cache: HealthCache;
  const outbox = `test:health-outbox:${randomUUID()}`;
  const operators = Array.from({ length: 150 }, () => randomUUID());
  // Recent: a report more than a minute old is not cached.
  const base = Date.now() - 10_000;

  const valid = (operatorId: string, status: HealthReport['status'], offsetMs: number): ValidReport => {
    const reportedAtMs = base + offsetMs;
    return {
      reportedAtMs,
      report: {
        operatorId,
        status,
        boundSessions: 2,
        inflight: 1,
        credentialsVersion: 3,
        reportedAt: new Date(reportedAtMs).toISOString(),
        connectorInstance: 'connector "a"',
      },
    };
  };
  const events = async () =>
    (await redis.xrange(outbox, '-', '+')).map(([, fields]) => ({
      eventId: fields[fields.indexOf('eventId') + 1]!,
      event: JSON.parse(fields[fields.indexOf('event') + 1]!) as Record<string, unknown>,
    }));

  beforeAll(() => {
    redis = createRedis(loadConfig().redis);
    cache = new HealthCache(redis);
  });
  afterAll(async () => {
    await redis.del(outbox, ...operators.map(healthKey), ...operators.map(healthTombstoneKey));
    await redis.quit();
  });

  it('answers every report of a batch in order, and appends one valid event per change', async () => {
    await redis.set(healthTombstoneKey(operators[5]!), '1', 'EX', 60);
    const batch = [
      ...operators.map((id) => valid(id, 'UP', 0)),
      valid(operators[0]!, 'UP', 1), // no change
      valid(operators[1]!, 'DOWN', 2), // a change
      valid(operators[2]!, 'DOWN', -1), // older than the cached one
    ];
    const outcomes = await cache.putNewest(batch, outbox, () => 9);

    expect(outcomes).toHaveLength(batch.length);
    expect(outcomes[5]).toEqual({ changed: false, write: 'deleted', previousStatus: null });
    expect(outcomes.slice(0, 150).filter((o) => o.write === 'written' && o.changed)).toHaveLength(149);
    expect(outcomes.slice(150)).toEqual([
      { changed: false, write: 'written', previousStatus: 'UP' },
      { changed: true, write: 'written', previousStatus: 'UP' },
      { changed: false, write: 'stale', previousStatus: null },
    ]);
    expect(JSON.parse((await redis.get(healthKey(operators[1]!)))!)).toEqual({
      ...batch[151]!.report,
      reportedAtMs: batch[151]!.reportedAtMs,
      previousStatus: 'UP',
    });

    const appended = await events();
    expect(appended).toHaveLength(150);
    for (const { eventId, event } of appended) {
      expect(eventId).toMatch(UUID_V8);
      expect(event.eventId).toBe(eventId);
      expect(problemsOf(event)).toEqual([]);
    }
    const down = appended.at(-1)!.event;
    expect(down).toEqual({
      eventId: appended.at(-1)!.eventId,
      type: 'operator.health',
      operatorId: operators[1],
      version: 9,
      occurredAt: batch[151]!.report.reportedAt,
      actor: 'system:health-worker',
      data: { ...batch[151]!.report, operatorId: undefined, previousStatus: 'UP' },
    });
  });

  it('gives a redelivered report its first answer and the same event id, without a second event', async () => {
    const id = operators[10]!;
    const again = valid(id, 'DEGRADED', 10);
    const [first] = await cache.putNewest([again], outbox, () => 9);
    const before = await events();
    const [second] = await cache.putNewest([again], outbox, () => 9);
    expect(first).toEqual({ changed: true, write: 'written', previousStatus: 'UP' });
    expect(second).toEqual({ changed: true, write: 'redelivered', previousStatus: 'UP' });
    expect(await events()).toHaveLength(before.length);
    // The id is a function of the report's identity: the same report, the same id.
    const other = new HealthCache(redis);
    const elsewhere = `${outbox}:2`;
    await redis.del(healthKey(id));
    await other.putNewest([again], elsewhere, () => 9);
    const [copy] = (await redis.xrange(elsewhere, '-', '+')).map(([, f]) => f[f.indexOf('eventId') + 1]);
    await redis.del(elsewhere);
    expect(copy).toBe(before.at(-1)!.eventId);
  });

  it('keeps a key for a minute from when its report was made, and never caches an older one after it', async () => {
    const id = randomUUID();
    /** A report made `agoMs` before now. */
    const at = (agoMs: number, status: HealthReport['status'] = 'UP') => valid(id, status, Date.now() - agoMs - base);
    try {
      // Fresh: about a minute to live.
      expect(await cache.putNewest([at(0)], outbox, () => 1)).toEqual([
        { changed: true, write: 'written', previousStatus: null },
      ]);
      expect(await redis.pttl(healthKey(id))).toBeGreaterThan(55_000);
      await redis.del(healthKey(id));

      // Made 58 s ago: it lives until a minute after it was made, not a minute from now.
      const newer = at(58_000);
      expect((await cache.putNewest([newer], outbox, () => 1))[0]?.write).toBe('written');
      expect(await redis.pexpiretime(healthKey(id))).toBe(newer.reportedAtMs + 60_000);
      const before = (await events()).length;
      await redis.del(healthKey(id)); // as when that minute is over
      // An older report processed late (a backlog, a slow replica): its minute is over too, so
      // it does not come back as the operator's current health, and tells no change.
      const older = valid(id, 'DOWN', newer.reportedAtMs - 3000 - base);
      expect(await cache.putNewest([older], outbox, () => 1)).toEqual([
        { changed: false, write: 'expired', previousStatus: null },
      ]);
      expect(await redis.exists(healthKey(id))).toBe(0);
      expect(await events()).toHaveLength(before);
    } finally {
      await redis.del(healthKey(id));
    }
  });
});
