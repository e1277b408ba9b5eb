import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { createPool, inTransaction, isUniqueViolation } from '../../src/clients/postgres';
import { commitChange, findOperator } from '../../src/db/operators';
import { IllegalTransitionError } from '../../src/domain/lifecycle';
import { isolatedDatabase, type IsolatedDatabase } from '../support/isolated-db';

const INDEX = 'operators_endpoint_live_key';

describe('PostgreSQL schema ops (real database)', () => {
  let pool: Pool;
  // Its own copy of the schema: the partition tests must not race housekeeping in other files.
  let isolated: IsolatedDatabase;

  beforeAll(async () => {
    isolated = await isolatedDatabase();
    pool = createPool(isolated.config);
  });

  afterAll(async () => {
    await pool.end();
    await isolated.drop();
  });

  const suffix = () => randomUUID().slice(0, 8);

  async function insertOperator(fields: {
    host: string;
    port: number;
    systemId: string;
    status?: string;
  }): Promise<string> {
    const id = randomUUID();
    await pool.query(
      `INSERT INTO ops.operators
         (id, name, host, port, system_id, bind_type, window_size, enquire_link_interval_s, status, created_by, updated_by)
       VALUES ($1, $2, $3, $4, $5, 'transceiver', 10, 30, $6, 'infra-test', 'infra-test')`,
      [id, `op-${suffix()}`, fields.host, fields.port, fields.systemId, fields.status ?? 'ACTIVE'],
    );
    return id;
  }

  async function expectEndpointTaken(fields: { host: string; port: number; systemId: string }): Promise<void> {
    const err = await insertOperator(fields).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    expect(isUniqueViolation(err, INDEX)).toBe(true);
  }

  it('keeps (lower(host), port, system_id) unique among live, not-failed operators', async () => {
    const host = `smsc-${suffix()}.example.test`;
    const endpoint = { host, port: 2775, systemId: `sys${suffix()}` };

    const first = await insertOperator(endpoint);

    // Same endpoint, also with the host in another letter case: refused by the partial index.
    await expectEndpointTaken(endpoint);
    await expectEndpointTaken({ ...endpoint, host: host.toUpperCase() });
    // The index is not broader than the endpoint: another port or system_id is a different operator.
    await insertOperator({ ...endpoint, port: 2776 });
    await insertOperator({ ...endpoint, systemId: `sys${suffix()}` });

    // Soft delete frees the endpoint.
    await pool.query(
      `UPDATE ops.operators SET deleted_at = now(), status = 'DELETED', updated_by = 'infra-test' WHERE id = $1`,
      [first],
    );
    const second = await insertOperator({ ...endpoint, host: host.toUpperCase() });
    await expectEndpointTaken(endpoint);

    // A failed onboarding frees it too (kept visible, not deleted).
    await pool.query(`UPDATE ops.operators SET status = 'ONBOARDING_FAILED', updated_by = 'infra-test' WHERE id = $1`, [
      second,
    ]);
    const third = await insertOperator({ ...endpoint, status: 'ONBOARDING' });
    await expectEndpointTaken(endpoint);

    const { rows } = await pool.query<{ id: string; status: string; deleted: boolean }>(
      `SELECT id, status, deleted_at IS NOT NULL AS deleted FROM ops.operators
        WHERE lower(host) = lower($1) AND port = $2 AND system_id = $3 ORDER BY created_at`,
      [host, endpoint.port, endpoint.systemId],
    );
    expect(rows).toEqual([
      { id: first, status: 'DELETED', deleted: true },
      { id: second, status: 'ONBOARDING_FAILED', deleted: false },
      { id: third, status: 'ONBOARDING', deleted: false },
    ]);
  });

  it('refuses an illegal status change in commitChange, writing neither the row nor an event', async () => {
    const id = await insertOperator({ host: `h-${suffix()}`, port: 2775, systemId: 'life' });
    const attempt = inTransaction(pool, async (tx) => {
      const op = await findOperator(tx, id, true);
      if (!op) throw new Error('the inserted operator is missing');
      return commitChange(
        tx,
        op,
        'deleted',
        { status: 'DELETED', statusReason: 'skipping the drain' },
        'infra-test',
        (next) => ({
          operator: next,
          reason: 'drained',
        }),
      );
    });
    await expect(attempt).rejects.toBeInstanceOf(IllegalTransitionError);
    const { rows } = await pool.query('SELECT status, version, deleted_at FROM ops.operators WHERE id = $1', [id]);
    expect(rows[0]).toMatchObject({ status: 'ACTIVE', version: '0', deleted_at: null });
    const events = await pool.query('SELECT 1 FROM ops.event_outbox WHERE operator_id = $1', [id]);
    expect(events.rowCount).toBe(0);
  });

  it('moves updated_at on every update (trigger), whatever the statement sets', async () => {
    const id = await insertOperator({ host: `smsc-${suffix()}.example.test`, port: 2775, systemId: `sys${suffix()}` });
    await pool.query(`UPDATE ops.operators SET updated_at = now() - interval '1 hour' WHERE id = $1`, [id]);
    const before = await pool.query<{ updated_at: Date; created_at: Date }>(
      'SELECT updated_at, created_at FROM ops.operators WHERE id = $1',
      [id],
    );
    // Even the back-dating statement above was overridden by the trigger.
    expect(before.rows[0]!.updated_at.getTime()).toBeGreaterThanOrEqual(before.rows[0]!.created_at.getTime());

    await pool.query(`UPDATE ops.operators SET name = 'renamed', updated_at = '2000-01-01T00:00:00Z' WHERE id = $1`, [
      id,
    ]);
    const after = await pool.query<{ updated_at: Date; name: string; fresh: boolean }>(
      `SELECT updated_at, name, updated_at > now() - interval '1 minute' AS fresh FROM ops.operators WHERE id = $1`,
      [id],
    );
    expect(after.rows[0]!.name).toBe('renamed');
    expect(after.rows[0]!.fresh).toBe(true);
    expect(after.rows[0]!.updated_at.getTime()).toBeGreaterThan(before.rows[0]!.updated_at.getTime());
  });

  it('connects without JIT: compiling a short statement costs more than running it', async () => {
    const { rows } = await pool.query<{ jit: string }>('SHOW jit');
    expect(rows[0]?.jit).toBe('off');
  });

  it("keeps the relay's mark a HOT update: no index names a column it sets, and pages have room", async () => {
    const { rows } = await pool.query<{ def: string }>(
      `SELECT pg_get_indexdef(indexrelid) AS def FROM pg_index WHERE indrelid = 'ops.event_outbox'::regclass`,
    );
    expect(rows.length).toBeGreaterThanOrEqual(3);
    for (const { def } of rows) expect(def).not.toMatch(/published_at|updated_at|updated_by/);
    const table = await pool.query<{ reloptions: string[] }>(
      `SELECT reloptions FROM pg_class WHERE oid = 'ops.event_outbox'::regclass`,
    );
    expect(table.rows[0]?.reloptions).toContain('fillfactor=50');
  });

  // The outbox's touch trigger is skipped when a statement sets updated_at to now() (the relay's
  // mark: the same value, without a plpgsql call); that skip is a speed rule and not observable.
  // What must hold is that any other value is still overwritten.
  it('still touches an outbox row whose update sets updated_at to anything but now()', async () => {
    const eventId = randomUUID();
    await pool.query(
      `INSERT INTO ops.event_outbox (event_id, subject, payload, created_by, updated_by)
       VALUES ($1, 'operator.config.updated', '{}', 'infra-test', 'infra-test')`,
      [eventId],
    );
    await pool.query(`UPDATE ops.event_outbox SET updated_at = '2000-01-01T00:00:00Z' WHERE event_id = $1`, [eventId]);
    const { rows } = await pool.query<{ fresh: boolean }>(
      `SELECT updated_at > now() - interval '1 minute' AS fresh FROM ops.event_outbox WHERE event_id = $1`,
      [eventId],
    );
    expect(rows[0]?.fresh).toBe(true);
  });

  it('partitions the health log by day and prunes only partitions past retention', async () => {
    await pool.query('SELECT ops.ensure_health_log_partitions(3)');
    await pool.query('SELECT ops.ensure_health_log_partitions(3)'); // idempotent

    const { rows: parts } = await pool.query<{ relname: string }>(
      `SELECT c.relname FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
         JOIN pg_class p ON p.oid = i.inhparent
         JOIN pg_namespace n ON n.oid = p.relnamespace
        WHERE n.nspname = 'ops' AND p.relname = 'operator_health_log'`,
    );
    const { rows: days } = await pool.query<{ day: string }>(
      `SELECT 'operator_health_log_' || to_char(d, 'YYYYMMDD') AS day
         FROM generate_series(current_date, current_date + 3, interval '1 day') AS d`,
    );
    const names = parts.map((p) => p.relname);
    for (const { day } of days) expect(names).toContain(day);

    const operatorId = randomUUID();
    const inserted = await pool.query<{ id: string; part: string }>(
      `INSERT INTO ops.operator_health_log
         (operator_id, status, bound_sessions, inflight, credentials_version, connector_instance, reported_at, created_by, updated_by)
       VALUES ($1, 'UP', 2, 0, 1, 'connector-test', now(), 'infra-test', 'infra-test')
       RETURNING id, tableoid::regclass::text AS part`,
      [operatorId],
    );
    // Today's row lands in today's partition, not in the default one.
    expect(inserted.rows[0]!.part).toBe(`ops.${days[0]!.day}`);

    const pruned = await pool.query<{ dropped: number }>('SELECT ops.prune_health_log(30) AS dropped');
    expect(pruned.rows[0]!.dropped).toBe(0);
    const kept = await pool.query('SELECT 1 FROM ops.operator_health_log WHERE operator_id = $1', [operatorId]);
    expect(kept.rowCount).toBe(1);

    // A partition older than the retention is dropped whole, with its rows.
    const { rows: old } = await pool.query<{ name: string; from: string; to: string }>(
      `SELECT 'operator_health_log_' || to_char(current_date - 40, 'YYYYMMDD') AS name,
              (current_date - 40)::text AS from, (current_date - 39)::text AS to`,
    );
    const { name, from, to } = old[0]!;
    await pool.query(
      `CREATE TABLE IF NOT EXISTS ops.${name} PARTITION OF ops.operator_health_log FOR VALUES FROM ('${from}') TO ('${to}')`,
    );
    const oldOperator = randomUUID();
    await pool.query(
      `INSERT INTO ops.operator_health_log
         (operator_id, status, bound_sessions, inflight, connector_instance, reported_at, created_by, updated_by)
       VALUES ($1, 'DOWN', 0, 0, 'connector-test', $2::date + time '12:00', 'infra-test', 'infra-test')`,
      [oldOperator, from],
    );
    const prunedOld = await pool.query<{ dropped: number }>('SELECT ops.prune_health_log(30) AS dropped');
    expect(prunedOld.rows[0]!.dropped).toBe(1);
    const exists = await pool.query<{ reg: string | null }>('SELECT to_regclass($1) AS reg', [`ops.${name}`]);
    expect(exists.rows[0]!.reg).toBeNull();
    const gone = await pool.query('SELECT 1 FROM ops.operator_health_log WHERE operator_id = $1', [oldOperator]);
    expect(gone.rowCount).toBe(0);
    const stillKept = await pool.query('SELECT 1 FROM ops.operator_health_log WHERE operator_id = $1', [operatorId]);
    expect(stillKept.rowCount).toBe(1);
  });
});
