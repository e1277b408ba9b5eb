import { connectNats, ensureStream, type NatsConnection } from '../src/clients/nats';
import { createPool, type Db } from '../src/clients/postgres';
import { loadConfig } from '../src/platform/config';
import { problemsOf } from '../src/events/catalog';
import type { EventEnvelope } from '../src/events/envelope';
import { OutboxRelay } from '../src/events/outbox';
import { createLogger } from '../src/platform/logger';
import { PrivateNats } from './support/private-nats';
import { isolatedDatabase, type IsolatedDatabase } from './support/isolated-db';
import { commitRename, insertActiveOperator } from './support/outbox-fixtures';

/**
 * README "Event delivery" with several replicas: two relays (each with its own pool and NATS connection, as two
 * processes would have) run together while changes of several operators commit concurrently.
 * Per operator, the stream holds every version once, in order. NATS is a private nats-server so
 * the whole stream can be read back.
 */

const config = loadConfig();
const STREAM = 'OPERATOR_EVENTS';
const ACTOR = 'test-outbox-replicas';
const OPERATORS = 8;
const WRITERS_PER_OPERATOR = 2;
const CHANGES_PER_WRITER = 10;

async function committed(db: Db, operatorIds: string[]) {
  const { rows } = await db.query<{ event_id: string; published: boolean }>(
    `SELECT event_id, published_at IS NOT NULL AS published FROM ops.event_outbox
      WHERE operator_id = ANY($1::uuid[]) ORDER BY id`,
    [operatorIds],
  );
  return rows;
}

/** The whole stream, in stream order, through an ordered consumer. */
async function readStream(nc: NatsConnection): Promise<{ event: EventEnvelope; msgId: string }[]> {
  const consumer = await nc.jetstream().consumers.get(STREAM);
  const got: { event: EventEnvelope; msgId: string }[] = [];
  for (;;) {
    const m = await consumer.next({ expires: 2000 });
    if (!m) return got;
    got.push({ event: m.json<EventEnvelope>(), msgId: m.headers?.get('Nats-Msg-Id') ?? '' });
    if (m.info.pending === 0) return got;
  }
}

describe('two outbox relays at once (private nats-server)', () => {
  let nats: PrivateNats;
  const pools: Db[] = [];
  const connections: NatsConnection[] = [];
  const relays: OutboxRelay[] = [];
  let db: Db;
  let isolated: IsolatedDatabase | undefined;

  beforeAll(async () => {
    nats = await PrivateNats.start();
    isolated = await isolatedDatabase();
    db = createPool(isolated.config);
    for (const name of ['replica-a', 'replica-b']) {
      const pool = createPool(isolated.config);
      const nc = await connectNats({ ...config.nats, servers: [nats.url] }, name);
      await ensureStream(nc, STREAM);
      pools.push(pool);
      connections.push(nc);
      relays.push(new OutboxRelay(pool, nc, createLogger('silent'), { stream: STREAM }));
    }
  });

  afterAll(async () => {
    await Promise.allSettled(relays.map((r) => r.stop()));
    await Promise.allSettled(connections.map((nc) => nc.close()));
    await Promise.allSettled([...pools, db].map((p) => p.end()));
    await isolated?.drop();
    await nats?.dispose();
  });

  it('publishes every version of every operator once, in order per operator', async () => {
    for (const relay of relays) relay.start(100);
    const operators: string[] = [];
    for (let i = 0; i < OPERATORS; i++) operators.push(await insertActiveOperator(db, ACTOR));

    // Concurrent writers, also on the same operator (its row lock orders their versions).
    await Promise.all(
      operators.flatMap((id) =>
        Array.from({ length: WRITERS_PER_OPERATOR }, async () => {
          for (let c = 0; c < CHANGES_PER_WRITER; c++) await commitRename(db, id, ACTOR);
        }),
      ),
    );
    const total = OPERATORS * WRITERS_PER_OPERATOR * CHANGES_PER_WRITER;
    const deadline = Date.now() + 30_000;
    while ((await committed(db, operators)).some((r) => !r.published)) {
      if (Date.now() > deadline) throw new Error('the relays did not publish everything within 30 s');
      await new Promise((r) => setTimeout(r, 200));
    }

    const rows = await committed(db, operators);
    expect(rows).toHaveLength(total);
    const wanted = new Set(operators);
    const onStream = (await readStream(connections[0] as NatsConnection)).filter((m) => wanted.has(m.event.operatorId));
    expect(onStream.map((m) => m.event.eventId).sort()).toEqual(rows.map((r) => r.event_id).sort());
    expect(new Set(onStream.map((m) => m.event.eventId)).size).toBe(total);
    for (const { event, msgId } of onStream) {
      expect(msgId).toBe(event.eventId);
      expect(problemsOf(event)).toEqual([]);
    }
    const expected = Array.from({ length: WRITERS_PER_OPERATOR * CHANGES_PER_WRITER }, (_, i) => i + 2);
    for (const id of operators) {
      expect(onStream.filter((m) => m.event.operatorId === id).map((m) => m.event.version)).toEqual(expected);
    }
  });

  it('carries on with the other relay when one stops while changes commit', async () => {
    // Only this test's two relays run from here on.
    await Promise.all(relays.map((r) => r.stop()));
    const pair: { pool: Db; relay: OutboxRelay; published: number }[] = [];
    for (const name of ['failover-a', 'failover-b']) {
      const pool = createPool((isolated as IsolatedDatabase).config);
      const nc = await connectNats({ ...config.nats, servers: [nats.url] }, name);
      const relay = new OutboxRelay(pool, nc, createLogger('silent'), { stream: STREAM });
      const entry = { pool, relay, published: 0 };
      relay.instrument({
        published: () => (entry.published += 1),
        publishFailed: () => undefined,
        parked: () => undefined,
      });
      pools.push(pool);
      connections.push(nc);
      relays.push(relay);
      pair.push(entry);
      relay.start(50);
    }
    const [a, b] = pair as [(typeof pair)[0], (typeof pair)[0]];

    const operators: string[] = [];
    for (let i = 0; i < 5; i++) operators.push(await insertActiveOperator(db, ACTOR));
    const changesEach = 40;
    // Round-robin across operators; several writers take from it, so some commit on the same operator at once.
    const tasks = Array.from(
      { length: operators.length * changesEach },
      (_, i) => operators[i % operators.length] as string,
    );
    const half = tasks.length / 2;
    let stopA: Promise<void> | undefined;
    const write = async (queue: string[], stopAfter?: number) => {
      let done = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let id = queue.shift(); id; id = queue.shift()) {
            await commitRename(db, id, ACTOR);
            // Relay A goes away (its lock with its connections) while both run and writers commit.
            if (++done === stopAfter) stopA = a.relay.stop().then(() => a.pool.end());
          }
        }),
      );
    };
    await write(tasks.splice(0, half), half - 20);
    await stopA;
    const bBefore = b.published;
    await write(tasks);

    const deadline = Date.now() + 30_000;
    while ((await committed(db, operators)).some((r) => !r.published)) {
      if (Date.now() > deadline) throw new Error('relay B did not publish the rest within 30 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    // Everything committed after A stopped went out through B.
    expect(b.published - bBefore).toBeGreaterThanOrEqual(half);

    const rows = await committed(db, operators);
    expect(rows).toHaveLength(operators.length * changesEach);
    const wanted = new Set(operators);
    const onStream = (await readStream(connections[0] as NatsConnection)).filter((m) => wanted.has(m.event.operatorId));
    expect(onStream.map((m) => m.event.eventId).sort()).toEqual(rows.map((r) => r.event_id).sort());
    expect(new Set(onStream.map((m) => m.event.eventId)).size).toBe(rows.length);
    const expected = Array.from({ length: changesEach }, (_, i) => i + 2);
    for (const id of operators) {
      expect(onStream.filter((m) => m.event.operatorId === id).map((m) => m.event.version)).toEqual(expected);
    }
  });

  it('publishes every event once and in order while a busy relay flushes under one lock and another waits to flush', async () => {
    // A relay woken by commits keeps its lock across flushes (for at most HOLD_MS); a flush that
    // queues for the lock (an activity's publishPendingEvents) gets it in turn, while commits go on.
    await Promise.all(relays.map((r) => r.stop()));
    const make = async (name: string) => {
      const pool = createPool((isolated as IsolatedDatabase).config);
      const nc = await connectNats({ ...config.nats, servers: [nats.url] }, name);
      const relay = new OutboxRelay(pool, nc, createLogger('silent'), { stream: STREAM });
      pools.push(pool);
      connections.push(nc);
      relays.push(relay);
      return relay;
    };
    const busy = await make('busy');
    const waiting = await make('waiting');
    let busyPublished = 0;
    busy.instrument({ published: () => busyPublished++, publishFailed: () => undefined, parked: () => undefined });
    busy.start(50);

    const operators: string[] = [];
    for (let i = 0; i < 4; i++) operators.push(await insertActiveOperator(db, ACTOR));
    // Three writers per operator: commits wake the busy relay again and again. They stop only once
    // the waiting flushes are through.
    let writing = true;
    const writers = [...operators, ...operators, ...operators].map(async (id) => {
      while (writing) await commitRename(db, id, ACTOR);
    });
    while (busyPublished < 20) await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 3; i++) await waiting.flush();
    writing = false;
    await Promise.all(writers);

    const deadline = Date.now() + 30_000;
    while ((await committed(db, operators)).some((r) => !r.published)) {
      if (Date.now() > deadline) throw new Error('the relays did not publish everything within 30 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    const rows = await committed(db, operators);
    const wanted = new Set(operators);
    const onStream = (await readStream(connections[0] as NatsConnection)).filter((m) => wanted.has(m.event.operatorId));
    expect(onStream.map((m) => m.event.eventId).sort()).toEqual(rows.map((r) => r.event_id).sort());
    for (const id of operators) {
      const versions = onStream.filter((m) => m.event.operatorId === id).map((m) => m.event.version);
      expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => i + 2));
    }
    // Every published row was taken off the queue: nothing is left for a later flush to read again.
    const queued = await db.query(
      `SELECT 1 FROM ops.event_outbox_pending p JOIN ops.event_outbox o ON o.id = p.id WHERE o.operator_id = ANY($1::uuid[])`,
      [operators],
    );
    expect(queued.rowCount).toBe(0);
  });
});
