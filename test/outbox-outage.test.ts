import { DeliverPolicy, type JsMsg } from 'nats';
import { connectNats, ensureStream, type NatsConnection } from '../src/clients/nats';
import { createPool, type Db } from '../src/clients/postgres';
import { loadConfig } from '../src/platform/config';
import type { EventEnvelope } from '../src/events/envelope';
import { OutboxRelay } from '../src/events/outbox';
import { createLogger } from '../src/platform/logger';
import { PrivateNats } from './support/private-nats';
import { isolatedDatabase, type IsolatedDatabase } from './support/isolated-db';
import { commitRename, insertActiveOperator } from './support/outbox-fixtures';

/**
 * README "Event delivery", also when NATS fails: changes committed while NATS is down reach the stream once
 * it is back, each exactly once and in version order per operator. NATS here is a private
 * nats-server that the test stops and restarts on the same port and store.
 */

const config = loadConfig();
const log = createLogger('silent');
const STREAM = config.nats.stream;
const OPERATORS = 3;
const CHANGES_DURING_OUTAGE = 20;
const BACKLOG = 100;
const STOP_AFTER = 50;
const ACTOR = 'test-outbox-outage';

async function pendingOf(db: Db, operatorIds: string[]): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    'SELECT count(*) AS n FROM ops.event_outbox WHERE operator_id = ANY($1) AND published_at IS NULL',
    [operatorIds],
  );
  return Number(rows[0]?.n);
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms`);
}

interface Received {
  event: EventEnvelope;
  msgId: string | undefined;
}

/** Everything the stream holds, from its first message, through an ordered consumer. */
async function readWholeStream(nc: NatsConnection): Promise<Received[]> {
  const jsm = await nc.jetstreamManager();
  const { state } = await jsm.streams.info(STREAM);
  const consumer = await nc.jetstream().consumers.get(STREAM, {
    filterSubjects: 'operator.config.>',
    // Not DeliverPolicy.All: nats.js also sets opt_start_seq, which nats-server 2.15 refuses.
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: 1,
  });
  const received: Received[] = [];
  let lastSeq = 0;
  while (lastSeq < state.last_seq) {
    const m: JsMsg | null = await consumer.next({ expires: 5000 });
    if (!m) throw new Error(`the stream stopped at sequence ${lastSeq} of ${state.last_seq}`);
    lastSeq = m.seq;
    received.push({ event: m.json<EventEnvelope>(), msgId: m.headers?.get('Nats-Msg-Id') });
  }
  return received;
}

/**
 * The stream holds each committed event of these operators exactly once (by eventId), under
 * Nats-Msg-Id = eventId, and per operator in version order: versions 2..lastVersion.
 */
async function expectExactlyOnceInOrder(db: Db, nc: NatsConnection, operators: string[], lastVersion: number) {
  const { rows: committed } = await db.query<{ event_id: string; operator_id: string; version: string }>(
    'SELECT event_id, operator_id, version FROM ops.event_outbox WHERE operator_id = ANY($1) ORDER BY id',
    [operators],
  );
  expect(committed).toHaveLength(operators.length * (lastVersion - 1));

  const received = (await readWholeStream(nc)).filter((r) => operators.includes(r.event.operatorId));
  for (const r of received) expect(r.msgId).toBe(r.event.eventId);
  expect(received.map((r) => r.event.eventId).sort()).toEqual(committed.map((c) => c.event_id).sort());
  for (const id of operators) {
    const mine = received.filter((r) => r.event.operatorId === id);
    // Version 1 was the insert; every change after it shows once, in order.
    expect(mine.map((r) => r.event.version)).toEqual(Array.from({ length: lastVersion - 1 }, (_, i) => i + 2));
    const eventIdOf = new Map(
      committed.filter((c) => c.operator_id === id).map((c) => [Number(c.version), c.event_id]),
    );
    for (const r of mine) expect(r.event.eventId).toBe(eventIdOf.get(r.event.version));
  }
}

describe('outbox during a NATS outage', () => {
  let nats: PrivateNats;
  let nc: NatsConnection;
  let db: Db;
  let isolated: IsolatedDatabase | undefined;
  const relays: OutboxRelay[] = [];

  const startRelay = (intervalMs = 100) => {
    const relay = new OutboxRelay(db, nc, log, { stream: STREAM });
    relays.push(relay);
    relay.start(intervalMs);
    return relay;
  };

  beforeAll(async () => {
    nats = await PrivateNats.start();
    isolated = await isolatedDatabase();
    db = createPool(isolated.config);
    nc = await connectNats({ ...config.nats, servers: [nats.url] }, 'outbox-outage-test');
    await ensureStream(nc, STREAM);
  });
  afterAll(async () => {
    await Promise.allSettled(relays.map((r) => r.stop()));
    await nc?.close();
    await db?.end();
    await isolated?.drop();
    await nats?.dispose();
  });

  it('publishes every change committed while NATS was down once it is back: once each, in version order', async () => {
    const relay = startRelay();
    const operators: string[] = [];
    for (let i = 0; i < OPERATORS; i++) operators.push(await insertActiveOperator(db, ACTOR));
    // One change each while NATS is up: the relay works before the outage.
    for (const id of operators) await commitRename(db, id, ACTOR);
    await waitUntil('the first changes published', async () => (await pendingOf(db, operators)) === 0, 15_000);

    await nats.stop();
    // Interleaved across operators, as independent admins would commit them.
    for (let n = 1; n <= CHANGES_DURING_OUTAGE; n++) {
      for (const id of operators) await commitRename(db, id, ACTOR);
    }
    // Nothing can have been published: the relay holds them all.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await pendingOf(db, operators)).toBe(OPERATORS * CHANGES_DURING_OUTAGE);

    await nats.restart();
    await waitUntil('the backlog published', async () => (await pendingOf(db, operators)) === 0, 30_000);
    await relay.stop();
    await expectExactlyOnceInOrder(db, nc, operators, CHANGES_DURING_OUTAGE + 2);
  });

  it('loses and repeats nothing when NATS stops in the middle of publishing a backlog', async () => {
    const operators: string[] = [];
    for (let i = 0; i < OPERATORS; i++) operators.push(await insertActiveOperator(db, ACTOR));
    // A backlog, committed while no relay runs.
    for (let n = 1; n <= BACKLOG; n++) {
      for (const id of operators) await commitRename(db, id, ACTOR);
    }

    // NATS goes down once part of the backlog is on the stream: publishes in flight lose their ack.
    let heard = 0;
    let stopping: Promise<void> | undefined;
    const watch = nc.subscribe('operator.config.updated', {
      callback: () => {
        if (++heard === STOP_AFTER) stopping = nats.stop();
      },
    });
    await nc.flush();
    const relay = startRelay();
    await waitUntil('NATS stopped mid-backlog', async () => stopping !== undefined, 15_000);
    await stopping;
    watch.unsubscribe();
    expect(await pendingOf(db, operators)).toBeGreaterThan(0);

    await nats.restart();
    await waitUntil('the rest of the backlog published', async () => (await pendingOf(db, operators)) === 0, 30_000);
    await relay.stop();
    await expectExactlyOnceInOrder(db, nc, operators, BACKLOG + 1);
  });
});
