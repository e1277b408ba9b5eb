import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import { inTransaction, createPool, type Db } from '../src/clients/postgres';
import { connectNats, type NatsConnection } from '../src/clients/nats';
import { loadConfig } from '../src/platform/config';
import { appendConfigEvent, OutboxRelay } from '../src/events/outbox';
import { instrumentOutbox } from '../src/events/outbox-metrics';
import { createLogger } from '../src/platform/logger';
import { EventWatcher } from './support/events';
import { isolatedDatabase, type IsolatedDatabase } from './support/isolated-db';
import { backendPid, waitUntilBlockedBy } from './support/pg-locks';

/** The relay's own behaviour: woken by NOTIFY at commit, poison rows parked, metrics. */

const config = loadConfig();
const log = createLogger('silent');

async function append(db: Db, operatorId: string, version: number, blob?: string) {
  // Extra fields ride along (consumers ignore them): a blob makes the event as large as a test needs.
  const change = {
    prefixTableId: operatorId,
    tableVersion: 1,
    entryCount: 0,
    contentHash: '',
    previousContentHash: '',
    replaced: true as const,
  };
  const data = blob ? { ...change, blob } : change;
  return inTransaction(db, (tx) =>
    appendConfigEvent(tx, { change: 'prefix_table_updated', operatorId, version, actor: 'test-outbox', data }),
  );
}

/**
 * An event larger than the server's max_payload, written into the outbox as it is: the API
 * refuses such a change (EVENT_MAX_BYTES), but a NATS server set to a smaller max_payload still
 * meets events it cannot take, and the relay must park them.
 */
async function appendOversized(db: Db, operatorId: string, version: number, bytes: number) {
  const eventId = randomUUID();
  const envelope = {
    eventId,
    type: 'operator.config.prefix_table_updated',
    operatorId,
    version,
    occurredAt: new Date().toISOString(),
    actor: 'test-outbox',
    data: {
      prefixTableId: operatorId,
      tableVersion: 1,
      entryCount: 0,
      contentHash: '',
      previousContentHash: '',
      replaced: true,
      blob: 'x'.repeat(bytes),
    },
  };
  await db.query(
    `INSERT INTO ops.event_outbox (event_id, subject, operator_id, version, payload, created_by, updated_by)
     VALUES ($1, $2, $3, $4, $5, 'test-outbox', 'test-outbox')`,
    [eventId, envelope.type, operatorId, version, JSON.stringify(envelope)],
  );
  return { eventId };
}

async function rowOf(db: Db, eventId: string) {
  const { rows } = await db.query<{ published_at: Date | null; failed_at: Date | null; last_error: string | null }>(
    'SELECT published_at, failed_at, last_error FROM ops.event_outbox WHERE event_id = $1',
    [eventId],
  );
  return rows[0];
}

describe('outbox relay', () => {
  let db: Db;
  let isolated: IsolatedDatabase;
  let nc: NatsConnection;
  let events: EventWatcher;

  beforeAll(async () => {
    // Other test files' relays would otherwise publish (or park) these rows first.
    isolated = await isolatedDatabase();
    db = createPool(isolated.config);
    nc = await connectNats(config.nats, 'outbox-relay-test');
    events = await EventWatcher.start(nc, config.nats.stream, 'operator.config.prefix_table_updated');
  });
  afterAll(async () => {
    await events.stop();
    await nc.drain();
    await db.end();
    await isolated.drop();
  });

  it('publishes at commit without waiting for its poll', async () => {
    // A poll interval far longer than the test: only the NOTIFY can wake it.
    const relay = new OutboxRelay(db, nc, log);
    relay.start(10 * 60_000);
    try {
      await new Promise((r) => setTimeout(r, 500)); // LISTEN in place
      const operatorId = randomUUID();
      const sent = await Promise.all([1, 2, 3].map((v) => append(db, operatorId, v)));
      const got = await events.waitFor(operatorId, (e) => e.length >= 3, 10_000);
      expect(got.map((e) => e.eventId).sort()).toEqual(sent.map((e) => e.eventId).sort());
    } finally {
      await relay.stop();
    }
  });

  it('measures commit to ack per event (outbox_commit_to_ack_seconds)', async () => {
    const relay = new OutboxRelay(db, nc, log);
    const registry = new Registry();
    instrumentOutbox(registry, relay);
    const operatorId = randomUUID();
    await append(db, operatorId, 1);
    await new Promise((r) => setTimeout(r, 400)); // committed, not yet published: the relay is not started
    await relay.flush();
    await events.waitFor(operatorId, (e) => e.length === 1, 10_000);
    const text = await registry.metrics();
    const count = Number(/^outbox_commit_to_ack_seconds_count (\S+)$/m.exec(text)?.[1] ?? 0);
    const sum = Number(/^outbox_commit_to_ack_seconds_sum (\S+)$/m.exec(text)?.[1] ?? 0);
    // This file's own database: ours is the one event, and it waited 0.4 s at least.
    expect(count).toBe(1);
    expect(sum).toBeGreaterThanOrEqual(0.4);
    expect(sum).toBeLessThan(5);
  });

  it("keeps an operator's version order when its change commits late, after newer rows, in the middle of a flush", async () => {
    const late = randomUUID();
    const others = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    // Version 5 takes its outbox id first and commits last: rows with higher ids commit before it.
    const slow = await db.connect();
    const gate = await db.connect();
    try {
      await slow.query('BEGIN');
      await appendConfigEvent(slow, {
        change: 'prefix_table_updated',
        operatorId: late,
        version: 5,
        actor: 'test-outbox',
        data: {
          prefixTableId: late,
          tableVersion: 5,
          entryCount: 0,
          contentHash: '',
          previousContentHash: '',
          replaced: true,
        },
      });
      for (const id of others) await append(db, id, 1);
      // Batches of two: the flush reads [o1 o2], [o3 o4], then the rows after o4. Holding o1's
      // row stops the flush's first mark, and every read queued behind it on the relay's
      // connection, until both of the late operator's changes have committed.
      const first = (await db.query<{ id: string }>('SELECT min(id)::text AS id FROM ops.event_outbox_pending'))
        .rows[0]!;
      await gate.query('BEGIN');
      await gate.query('SELECT 1 FROM ops.event_outbox WHERE id = $1 FOR UPDATE', [first.id]);
      const gatePid = await backendPid(gate);

      const relay = new OutboxRelay(db, nc, log, { batchSize: 2 });
      const flushed = relay.flush();
      await waitUntilBlockedBy(db, gatePid, { failure: 'the flush never reached its first mark' });
      await slow.query('COMMIT');
      await append(db, late, 6);
      await gate.query('ROLLBACK');
      await flushed;
      await relay.flush();

      const got = await events.waitFor(late, (e) => e.length >= 2, 10_000);
      expect(got.map((e) => e.version)).toEqual([5, 6]);
    } finally {
      slow.release(true);
      gate.release(true);
    }
  });

  it('queues every row written to the outbox, whoever wrote it, and only dequeues one marked by others', async () => {
    const queued = (eventId: string) =>
      db
        .query<{ n: number }>(
          `SELECT count(*)::int AS n FROM ops.event_outbox_pending p JOIN ops.event_outbox o ON o.id = p.id
            WHERE o.event_id = $1`,
          [eventId],
        )
        .then((r) => r.rows[0]?.n);
    const operatorId = randomUUID();
    // As an earlier version of the service writes and marks rows: the outbox alone, no queue.
    const insert = (eventId: string, version: number, publishedAt: string | null) =>
      db.query(
        `INSERT INTO ops.event_outbox (event_id, subject, operator_id, version, payload, published_at, created_by, updated_by)
         VALUES ($1, 'operator.config.prefix_table_updated', $2, $3, $4, $5, 'test-outbox', 'test-outbox')`,
        [eventId, operatorId, version, JSON.stringify({ eventId, operatorId, version }), publishedAt],
      );
    const markedByOthers = randomUUID();
    const alreadyPublished = randomUUID();
    await insert(markedByOthers, 1, null);
    await insert(alreadyPublished, 2, new Date().toISOString());
    expect(await queued(markedByOthers)).toBe(1);
    expect(await queued(alreadyPublished)).toBe(0);

    await db.query(`UPDATE ops.event_outbox SET published_at = '2026-01-01T00:00:00Z' WHERE event_id = $1`, [
      markedByOthers,
    ]);
    const relay = new OutboxRelay(db, nc, log);
    const last = await append(db, operatorId, 3);
    expect(await relay.flush()).toBe(1);
    await events.waitFor(operatorId, (e) => e.length === 1);
    expect(await queued(markedByOthers)).toBe(0);
    // Its mark is kept, and it never went out again; the row after it did.
    expect((await rowOf(db, markedByOthers))?.published_at?.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(events.of(operatorId).map((e) => e.eventId)).toEqual([last.eventId]);
  });

  it('parks an event NATS can never take and holds back only that operator', async () => {
    const relay = new OutboxRelay(db, nc, log);
    const registry = new Registry();
    instrumentOutbox(registry, relay);
    const maxPayload = nc.info?.max_payload ?? 1024 * 1024;

    const stuck = randomUUID();
    const other = randomUUID();
    const huge = await appendOversized(db, stuck, 1, maxPayload + 1);
    const behind = await append(db, stuck, 2);
    const unrelated = await append(db, other, 1);

    await relay.flush();
    await events.waitFor(other, (e) => e.length === 1);
    expect((await rowOf(db, unrelated.eventId))?.published_at).toBeInstanceOf(Date);
    const parked = await rowOf(db, huge.eventId);
    expect(parked?.failed_at).toBeInstanceOf(Date);
    expect(parked?.last_error).toMatch(/exceeds the server's max_payload/);
    // Per-operator order: the later event of the same operator waits behind the parked one.
    expect((await rowOf(db, behind.eventId))?.published_at).toBeNull();
    expect(events.of(stuck)).toEqual([]);
    // And in every flush after: the parked row is read again, flagged, and still holds it.
    await relay.flush();
    await events.waitFor(other, (e) => e.length === 1);
    expect((await rowOf(db, behind.eventId))?.published_at).toBeNull();
    expect(events.of(stuck)).toEqual([]);

    const backlog = await relay.backlog();
    expect(backlog.parked).toBeGreaterThanOrEqual(1);
    expect(backlog.pending).toBeGreaterThanOrEqual(2);
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/^outbox_parked_events [1-9]/m);
    expect(metrics).toMatch(/^outbox_parked_total 1$/m);
    expect(metrics).toMatch(/^outbox_published_total\{type="operator\.config\.prefix_table_updated"\} [1-9]/m);
    expect(metrics).toMatch(/^outbox_oldest_pending_age_seconds \d/m);

    // Ops skip it as the runbook says; the operator's later event then goes out.
    await db.query(
      `UPDATE ops.event_outbox SET published_at = now(), last_error = 'skipped by ops: ' || last_error,
              updated_by = 'test-ops' WHERE event_id = $1`,
      [huge.eventId],
    );
    await relay.flush();
    const got = await events.waitFor(stuck, (e) => e.length === 1);
    expect(got.map((e) => [e.eventId, e.version])).toEqual([[behind.eventId, 2]]);
  });
});
