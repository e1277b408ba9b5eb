import { randomUUID } from 'node:crypto';
import { connectNats, STREAM_SETTINGS, STREAM_SUBJECTS, type NatsConnection } from '../src/clients/nats';
import { createPool, inTransaction, type Db } from '../src/clients/postgres';
import { loadConfig } from '../src/platform/config';
import { commitChange, findOperator } from '../src/db/operators';
import { OutboxRelay } from '../src/events/outbox';
import { createLogger } from '../src/platform/logger';
import { PrivateNats } from './support/private-nats';
import { isolatedDatabase, type IsolatedDatabase } from './support/isolated-db';

/**
 * Exactly-once must not rest on the duplicate window alone: an event JetStream stored whose ack
 * never came back (NATS died right after storing it, or the relay died before its mark) may be
 * retried long after the window forgot its Nats-Msg-Id. The stream here has a 1-second window,
 * so the retry is "late" without waiting; the relay must find the event on the stream instead
 * of publishing it again.
 */

const config = loadConfig();
const STREAM = 'OPERATOR_EVENTS';
const ACTOR = 'test-outbox-late-retry';
const WINDOW_NS = 1e9;

async function activeOperatorWithChange(db: Db): Promise<{ operatorId: string; eventId: string; payload: unknown }> {
  const operatorId = randomUUID();
  await db.query(
    `INSERT INTO ops.operators (id, name, host, port, system_id, bind_type, window_size, enquire_link_interval_s,
                                status, version, created_by, updated_by)
     VALUES ($1, 'Late retry', $2, 2775, 'late', 'transceiver', 10, 30, 'ACTIVE', 1, $3, $3)`,
    [operatorId, `late-${operatorId}.example.net`, ACTOR],
  );
  await inTransaction(db, async (tx) => {
    const current = await findOperator(tx, operatorId, true);
    if (!current) throw new Error('operator vanished');
    await commitChange(tx, current, 'updated', { name: 'Late retry v2' }, ACTOR, (next) => ({
      operator: next,
      changed: ['name'],
    }));
  });
  // Committed long ago, as after an outage or a relay crash that outlasted the window.
  const { rows } = await db.query<{ event_id: string; payload: unknown }>(
    `UPDATE ops.event_outbox SET created_at = now() - interval '20 minutes'
      WHERE operator_id = $1 RETURNING event_id, payload`,
    [operatorId],
  );
  return { operatorId, eventId: rows[0]?.event_id ?? '', payload: rows[0]?.payload };
}

async function messagesWithId(nc: NatsConnection, msgIds: string[]): Promise<string[]> {
  const consumer = await nc.jetstream().consumers.get(STREAM);
  const found: string[] = [];
  for (;;) {
    const m = await consumer.next({ expires: 2000 });
    if (!m) return found;
    const id = m.headers?.get('Nats-Msg-Id') ?? '';
    if (msgIds.includes(id)) found.push(id);
    if (m.info.pending === 0) return found;
  }
}

describe('outbox retry after the duplicate window (private nats-server)', () => {
  let nats: PrivateNats;
  let nc: NatsConnection;
  let db: Db;
  let isolated: IsolatedDatabase | undefined;

  beforeAll(async () => {
    nats = await PrivateNats.start();
    nc = await connectNats({ ...config.nats, servers: [nats.url] }, 'outbox-late-retry-test');
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: STREAM, subjects: STREAM_SUBJECTS, ...STREAM_SETTINGS, duplicate_window: WINDOW_NS });
    isolated = await isolatedDatabase();
    db = createPool(isolated.config);
  });

  afterAll(async () => {
    await nc?.close();
    await db?.end();
    await isolated?.drop();
    await nats?.dispose();
  });

  it('does not publish again an event the stream stored but never acknowledged', async () => {
    const acked = await activeOperatorWithChange(db);
    const neverSent = await activeOperatorWithChange(db);
    const js = nc.jetstream();
    // The attempt whose ack was lost: stored on the stream, the row still unmarked.
    const first = await js.publish('operator.config.updated', JSON.stringify(acked.payload), { msgID: acked.eventId });
    expect(first.duplicate).toBe(false);

    // The window has forgotten it: a plain re-publish would be stored a second time.
    const probe = randomUUID();
    await js.publish('operator.config.updated', JSON.stringify({ probe }), { msgID: probe });
    // The server forgets ids on a timer: publish the probe again until it is no longer a duplicate.
    const deadline = Date.now() + 15_000;
    let forgotten = false;
    while (!forgotten && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      forgotten = !(await js.publish('operator.config.updated', JSON.stringify({ probe }), { msgID: probe })).duplicate;
    }
    expect(forgotten).toBe(true);

    const relay = new OutboxRelay(db, nc, createLogger('silent'), { stream: STREAM });
    await relay.flush();

    const { rows } = await db.query<{ event_id: string; published_at: Date | null }>(
      'SELECT event_id, published_at FROM ops.event_outbox WHERE event_id = ANY($1::uuid[])',
      [[acked.eventId, neverSent.eventId]],
    );
    expect(rows.map((r) => r.published_at)).toEqual([expect.any(Date), expect.any(Date)]);
    // Each exactly once: the stored one not again, the other one published.
    expect((await messagesWithId(nc, [acked.eventId, neverSent.eventId])).sort()).toEqual(
      [acked.eventId, neverSent.eventId].sort(),
    );
  });

  it('never looks up the stream for a parked event older than the window', async () => {
    // Parked rows are read again by every flush: looking each one up would make a single parked
    // event cost every flush a read of the stream from its time on.
    const parked = await activeOperatorWithChange(db);
    await db.query(`UPDATE ops.event_outbox SET failed_at = now(), last_error = 'test' WHERE event_id = $1`, [
      parked.eventId,
    ]);
    const relay = new OutboxRelay(db, nc, createLogger('silent'), { stream: STREAM });
    const lookups = jest.spyOn(nc, 'jetstreamManager');
    try {
      expect(await relay.flush()).toBe(0);
      expect(lookups).not.toHaveBeenCalled();
    } finally {
      lookups.mockRestore();
    }
  });

  it('publishes an old event when the stream holds no config event after it, only health events', async () => {
    // A fresh stream: no config event at all, only a health event after the row's time (the
    // health process publishes while the relay's workers are down).
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(STREAM);
    await jsm.streams.add({ name: STREAM, subjects: STREAM_SUBJECTS, ...STREAM_SETTINGS, duplicate_window: WINDOW_NS });
    const change = await activeOperatorWithChange(db);
    await nc.jetstream().publish('operator.health', JSON.stringify({ status: 'UP' }), { msgID: randomUUID() });

    const relay = new OutboxRelay(db, nc, createLogger('silent'), { stream: STREAM });
    expect(await relay.flush()).toBe(1);
    // The look-up's consumer is gone with it.
    expect((await jsm.consumers.list(STREAM).next()).length).toBe(0);
    expect(await messagesWithId(nc, [change.eventId])).toEqual([change.eventId]);
  });
});
