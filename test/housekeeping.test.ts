import { randomUUID } from 'node:crypto';
import { createPool, type Db } from '../src/clients/postgres';
import { loadConfig } from '../src/platform/config';
import { runHousekeeping } from '../src/db/housekeeping';
import { RELAY_LOCK_KEY } from '../src/db/outbox';
import { isolatedDatabase } from './support/isolated-db';

describe('housekeeping', () => {
  let db: Db;
  beforeAll(() => {
    db = createPool(loadConfig().postgres);
  });
  afterAll(() => db.end());

  it('drops expired idempotency keys and old published events, keeping anything unpublished', async () => {
    // Hold the relay lock so no relay of a concurrent test file publishes the fake pending event.
    const lock = await db.connect();
    await lock.query('SELECT pg_advisory_lock($1)', [RELAY_LOCK_KEY]);
    try {
      await checkHousekeeping();
    } finally {
      await lock.query(`DELETE FROM ops.event_outbox WHERE created_by = 'housekeeping-test'`);
      await lock.query('SELECT pg_advisory_unlock($1)', [RELAY_LOCK_KEY]);
      lock.release();
    }
  });

  async function checkHousekeeping(): Promise<void> {
    const actor = `housekeeping-${randomUUID()}`;
    const insertKey = (key: string, age: string) =>
      db.query(
        `INSERT INTO ops.idempotency_keys (actor, key, request_hash, created_at, created_by, updated_by)
         VALUES ($1, $2, 'h', now() - $3::interval, $1, $1)`,
        [actor, key, age],
      );
    await insertKey('old', '25 hours');
    await insertKey('fresh', '1 hour');

    const insertEvent = (published: string | null) => {
      const id = randomUUID();
      return db
        .query(
          `INSERT INTO ops.event_outbox (event_id, subject, payload, published_at, created_by, updated_by)
           VALUES ($1, 'operator.config.updated', '{}', now() - $2::interval, 'housekeeping-test', 'housekeeping-test')`,
          [id, published],
        )
        .then(() => id);
    };
    const oldPublished = await insertEvent('8 days');
    const recentPublished = await insertEvent('1 day');
    const unpublished = await insertEvent(null);
    await db.query(`UPDATE ops.event_outbox SET created_at = now() - interval '30 days' WHERE event_id = $1`, [
      unpublished,
    ]);

    const result = await runHousekeeping(db, 30);
    expect(result.idempotencyKeysDeleted).toBeGreaterThanOrEqual(1);
    expect(result.outboxRowsDeleted).toBeGreaterThanOrEqual(1);

    const keys = await db.query('SELECT key FROM ops.idempotency_keys WHERE actor = $1', [actor]);
    expect(keys.rows.map((r: { key: string }) => r.key)).toEqual(['fresh']);
    const events = await db.query('SELECT event_id FROM ops.event_outbox WHERE event_id = ANY($1::uuid[])', [
      [oldPublished, recentPublished, unpublished],
    ]);
    expect(events.rows.map((r: { event_id: string }) => r.event_id).sort()).toEqual(
      [recentPublished, unpublished].sort(),
    );
  }

  it("queues an unpublished outbox row the relay's queue lacks (written with triggers off)", async () => {
    const lock = await db.connect();
    await lock.query('SELECT pg_advisory_lock($1)', [RELAY_LOCK_KEY]);
    const eventId = randomUUID();
    try {
      // As a restore with --disable-triggers or a logical replica writes it: no queue trigger.
      await lock.query('BEGIN');
      await lock.query("SET LOCAL session_replication_role = 'replica'");
      await lock.query(
        `INSERT INTO ops.event_outbox (event_id, subject, payload, created_by, updated_by)
         VALUES ($1, 'operator.config.updated', '{}', 'housekeeping-test', 'housekeeping-test')`,
        [eventId],
      );
      await lock.query('COMMIT');
      const queued = () =>
        db
          .query<{ n: number }>(
            `SELECT count(*)::int AS n FROM ops.event_outbox_pending p JOIN ops.event_outbox o USING (id)
              WHERE o.event_id = $1`,
            [eventId],
          )
          .then((r) => r.rows[0]?.n);
      expect(await queued()).toBe(0);
      const result = await runHousekeeping(db, 30);
      expect(result.outboxRowsRequeued).toBeGreaterThanOrEqual(1);
      expect(await queued()).toBe(1);
    } finally {
      await lock.query(`DELETE FROM ops.event_outbox WHERE event_id = $1`, [eventId]);
      await lock.query('SELECT pg_advisory_unlock($1)', [RELAY_LOCK_KEY]);
      lock.release();
    }
  });

  it('keeps a week of health-log partitions ahead, making the ones missing', async () => {
    // A database of its own: the migration already made this week's partitions, so some are
    // dropped first, and only housekeeping can bring them back.
    const isolated = await isolatedDatabase();
    const own = createPool(isolated.config);
    try {
      const ahead = `SELECT to_char(current_date + d, 'YYYYMMDD') AS day FROM generate_series(1, 7) AS d`;
      const days = (await own.query<{ day: string }>(ahead)).rows.map((r) => r.day);
      for (const day of days.slice(-3)) await own.query(`DROP TABLE ops.operator_health_log_${day}`);
      const present = async () =>
        (
          await own.query<{ relname: string }>(
            `SELECT relname FROM pg_class WHERE relname = ANY($1::text[]) ORDER BY relname`,
            [days.map((day) => `operator_health_log_${day}`)],
          )
        ).rows.map((r) => r.relname);
      expect(await present()).toHaveLength(4);

      await runHousekeeping(own, 30);
      expect(await present()).toEqual(days.map((day) => `operator_health_log_${day}`));
    } finally {
      await own.end();
      await isolated.drop();
    }
  });
});
