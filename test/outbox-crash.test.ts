import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { connectNats, ensureStream, type NatsConnection } from '../src/clients/nats';
import { createPool, type Db } from '../src/clients/postgres';
import { loadConfig } from '../src/platform/config';
import { OutboxRelay } from '../src/events/outbox';
import { createLogger } from '../src/platform/logger';
import { EventWatcher } from './support/events';
import { isolatedDatabase, type IsolatedDatabase } from './support/isolated-db';
import { PrivateNats } from './support/private-nats';
import { commitRename, insertActiveOperator } from './support/outbox-fixtures';

/**
 * README "Event delivery", also when the process fails between commit and publish. A child process commits a
 * change and is SIGKILLed before any relay ran; a fresh relay (a restarted process) publishes the
 * event, once. The other side: an event published again (a crash between JetStream's ack and the
 * mark) is dropped by the stream's duplicate window.
 */

const root = path.resolve(__dirname, '..');
const CHILD = path.join(__dirname, 'support/outbox-crash-child.ts');
const config = loadConfig();
const log = createLogger('silent');
const ACTOR = 'test-outbox-crash';
const BACKLOG = 400;
const KILL_AFTER = 150;

async function publishedAt(db: Db, eventId: string): Promise<Date | null | undefined> {
  const { rows } = await db.query<{ published_at: Date | null }>(
    'SELECT published_at FROM ops.event_outbox WHERE event_id = $1',
    [eventId],
  );
  return rows[0]?.published_at;
}

const children: ChildProcess[] = [];

/**
 * node itself with tsx's loader, not the tsx CLI: the CLI runs the script in a grandchild that a
 * SIGKILL of the CLI would leave running.
 */
/** This file's own database: the relays of other test files must not publish its outbox. */
let isolated: IsolatedDatabase;

function spawnChild(args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(
    process.execPath,
    ['--import', pathToFileURL(path.join(root, 'node_modules/tsx/dist/loader.mjs')).href, CHILD, ...args],
    { env: { ...process.env, DATABASE_URL: isolated.url, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  return child;
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** Runs the child until it prints its committed event id; resolves with that id. */
async function commitInChild(child: ChildProcess): Promise<string> {
  let output = '';
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the child never committed:\n${output}`)), 30_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      const match = /committed ([0-9a-f-]{36})/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the child exited (${code}) before committing:\n${output}`));
    });
  });
}

describe('outbox after a process crash', () => {
  let db: Db;
  let nc: NatsConnection;
  let events: EventWatcher;
  // The restarted process: its own pool and NATS connection.
  let relayDb: Db;
  let relayNc: NatsConnection;

  beforeAll(async () => {
    isolated = await isolatedDatabase();
    db = createPool(isolated.config);
    nc = await connectNats(config.nats, 'outbox-crash-test');
    events = await EventWatcher.start(nc, config.nats.stream, 'operator.config.updated');
    relayDb = createPool(isolated.config);
    relayNc = await connectNats(config.nats, 'outbox-crash-test-relay');
  });
  afterAll(async () => {
    for (const child of children) await killAndWait(child);
    await events.stop();
    await Promise.allSettled([nc.drain(), relayNc.drain()]);
    await Promise.allSettled([db.end(), relayDb.end()]);
    await isolated?.drop();
  });

  it('publishes, once, the event of a process killed between commit and publish', async () => {
    const operatorId = await insertActiveOperator(db, ACTOR);
    const child = spawnChild(['commit', operatorId]);
    const eventId = await commitInChild(child);
    await killAndWait(child);

    // Committed, and nothing published it: the crash window is real.
    expect(await publishedAt(db, eventId)).toBeNull();
    expect(events.of(operatorId)).toEqual([]);

    const relay = new OutboxRelay(relayDb, relayNc, log, { stream: config.nats.stream });
    relay.start(200);
    try {
      await events.waitFor(operatorId, (e) => e.some((x) => x.eventId === eventId));
      // A later change of the same operator is the barrier: the stream delivers in order, so a
      // second copy of the crashed event would show before it.
      await commitRename(db, operatorId, ACTOR);
      const got = await events.waitFor(operatorId, (e) => e.some((x) => x.version === 3));
      expect(got.map((e) => [e.eventId, e.version])).toEqual([
        [eventId, 2],
        [expect.any(String), 3],
      ]);
      expect(events.msgIdOf(got[0]!)).toBe(eventId);
      expect(await publishedAt(db, eventId)).toBeInstanceOf(Date);
    } finally {
      await relay.stop();
    }
  });

  it('lets the duplicate window drop an event published a second time', async () => {
    const operatorId = await insertActiveOperator(db, ACTOR);
    await commitRename(db, operatorId, ACTOR);
    const relay = new OutboxRelay(relayDb, relayNc, log, { stream: config.nats.stream });
    await relay.flush();
    const [first] = await events.waitFor(operatorId, (e) => e.length === 1);

    // As if the relay died after JetStream's ack but before marking the row.
    // Unmarking queues the row again (the outbox's requeue trigger).
    await db.query('UPDATE ops.event_outbox SET published_at = NULL WHERE event_id = $1', [first!.eventId]);
    expect(await relay.flush()).toBeGreaterThanOrEqual(1);
    expect(await publishedAt(db, first!.eventId)).toBeInstanceOf(Date);

    // The barrier again: version 3 arrives after anything the re-publish could have stored.
    await commitRename(db, operatorId, ACTOR);
    await relay.flush();
    const got = await events.waitFor(operatorId, (e) => e.some((x) => x.version === 3));
    expect(got.map((e) => e.version)).toEqual([2, 3]);
    expect(got.filter((e) => e.eventId === first!.eventId)).toHaveLength(1);
  });

  it('publishes a backlog once when its relay is killed between the acks and the marks', async () => {
    const operatorId = await insertActiveOperator(db, ACTOR);
    for (let i = 0; i < BACKLOG; i++) await commitRename(db, operatorId, ACTOR);

    // Kill the relaying process once part of the backlog is on the stream.
    let heard = 0;
    let killed: Promise<void> | undefined;
    const sub = nc.subscribe('operator.config.updated', {
      callback: (_err, m) => {
        if ((m.json() as { operatorId?: string }).operatorId !== operatorId) return;
        // Only the child publishes this operator's events, so `child` is set by then.
        if (++heard === KILL_AFTER) killed = killAndWait(child);
      },
    });
    await nc.flush();
    const child = spawnChild(['relay']);
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 30_000;
    while (!killed && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (!killed) throw new Error(`the relay child was never killed mid-backlog (heard ${heard}):\n${output}`);
    await killed;
    sub.unsubscribe();
    // Part of the backlog is still pending: the kill landed in the middle of it.
    expect(output).not.toContain('flushed');
    const { rows } = await db.query<{ n: string }>(
      'SELECT count(*) AS n FROM ops.event_outbox WHERE operator_id = $1 AND published_at IS NULL',
      [operatorId],
    );
    expect(Number(rows[0]?.n)).toBeGreaterThan(0);

    // The restarted process re-publishes whatever was acked but not marked; the stream drops those.
    const relay = new OutboxRelay(relayDb, relayNc, log, { stream: config.nats.stream });
    await relay.flush();
    await commitRename(db, operatorId, ACTOR); // the barrier: version BACKLOG + 2
    await relay.flush();
    const got = await events.waitFor(operatorId, (e) => e.some((x) => x.version === BACKLOG + 2));
    expect(got.map((e) => e.version)).toEqual(Array.from({ length: BACKLOG + 1 }, (_, i) => i + 2));
    expect(new Set(got.map((e) => e.eventId)).size).toBe(got.length);
  });

  it('publishes a pipelined backlog of many operators once and in order per operator when NATS and its relay die mid-batch', async () => {
    // A NATS of the test's own, killed under the relay: the shared one is never touched.
    const nats = await PrivateNats.start();
    const pnc = await connectNats({ ...config.nats, servers: [nats.url] }, 'outbox-crash-pipelined');
    try {
      await ensureStream(pnc, config.nats.stream);
      const operators = await Promise.all(Array.from({ length: 40 }, () => insertActiveOperator(db, ACTOR)));
      for (let round = 0; round < 10; round++) await Promise.all(operators.map((id) => commitRename(db, id, ACTOR)));
      const ours = new Set(operators);

      // Kill the server once part of the pipelined backlog is stored, then the relaying process.
      let heard = 0;
      let serverKilled: Promise<void> | undefined;
      const sub = pnc.subscribe('operator.config.updated', {
        callback: (_err, m) => {
          if (!ours.has((m.json() as { operatorId?: string }).operatorId ?? '')) return;
          if (++heard === 120) serverKilled = nats.stop('SIGKILL');
        },
      });
      await pnc.flush();
      const child = spawnChild(['relay'], { NATS_URL: nats.url });
      const deadline = Date.now() + 30_000;
      while (!serverKilled && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      if (!serverKilled) throw new Error(`NATS was never killed mid-backlog (heard ${heard})`);
      await serverKilled;
      await killAndWait(child);
      sub.unsubscribe();
      const { rows } = await db.query<{ n: string }>(
        'SELECT count(*) AS n FROM ops.event_outbox WHERE operator_id = ANY($1) AND published_at IS NULL',
        [operators],
      );
      expect(Number(rows[0]?.n)).toBeGreaterThan(0);

      // NATS back with its store; a restarted relay publishes the rest.
      await nats.restart();
      // Batches of 50: the rest crosses batch boundaries (prefetch, marks behind, held operators).
      const relay = new OutboxRelay(relayDb, pnc, log, { stream: config.nats.stream, batchSize: 50 });
      const until = Date.now() + 30_000;
      for (;;) {
        const sent = await relay.flush().catch(() => -1);
        if (sent === 0 || Date.now() > until) break;
        if (sent < 0) await new Promise((r) => setTimeout(r, 250)); // reconnecting
      }

      // The whole stream, message by message: each operator's versions 2..11, once, in order.
      const jsm = await pnc.jetstreamManager();
      const { state } = await jsm.streams.info(config.nats.stream);
      const versions = new Map<string, number[]>();
      for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(config.nats.stream, { seq });
        const e = m.json<{ operatorId: string; version: number }>();
        versions.set(e.operatorId, [...(versions.get(e.operatorId) ?? []), e.version]);
      }
      const expected = Array.from({ length: 10 }, (_, i) => i + 2);
      expect(operators.filter((id) => JSON.stringify(versions.get(id)) !== JSON.stringify(expected))).toEqual([]);
    } finally {
      await pnc.close().catch(() => undefined);
      await nats.dispose();
    }
  });
});
