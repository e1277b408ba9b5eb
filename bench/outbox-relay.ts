/**
 * Outbox relay throughput against the real local stack (`npm run stack:up`): flushing a backlog
 * of BENCH_N events (default 10,000) of BENCH_OPERATORS operators (default 1,000), BENCH_ROUNDS
 * times (default 3), compared with raw JetStream async publishing of the same payloads, acks
 * awaited in batches of 500, in the same run. Goal: flush ≥ 0.6 of the baseline. Usage:
 * `npm run bench:outbox-relay`; `npm run bench` runs it with the other benchmarks. The
 * end-to-end latency of a change is bench/propagation.ts.
 *
 * Nothing touches the service's own data: the messages go to a throwaway stream BENCH_<id> on
 * `bench.<id>.>`, the outbox rows live in a throwaway database operator_mgmt_bench_<id>, and
 * both are removed at the end, on failure and on SIGINT/SIGTERM too.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Pool } from 'pg';
import { RetentionPolicy, StorageType, type NatsConnection } from 'nats';
import { loadConfig } from '../src/platform/config';
import { connectNats } from '../src/clients/nats';
import { createPool, inTransaction } from '../src/clients/postgres';
import type { Operator } from '../src/domain/operator';
import type { EventEnvelope } from '../src/events/envelope';
import { OutboxRelay } from '../src/events/outbox';
import { createLogger } from '../src/platform/logger';
import { createBenchDatabase } from './bench-database';
import { intEnv } from './bench-service';
import { runBench, type Cleanup } from './cleanup';

const WARMUP_N = 100;
const ACTOR = 'system:bench';

/** The data commitChange puts in an `updated` event: the operator as it stands after the change. */
function operatorSnapshot(operatorId: string, version: number): Operator {
  const now = new Date().toISOString();
  return {
    id: operatorId,
    name: 'Bench Operator SMSC Primary',
    host: 'smsc-primary.bench.example.net',
    port: 2775,
    systemId: 'benchsys01',
    systemType: 'VMA',
    bindType: 'transceiver',
    tls: true,
    windowSize: 50,
    enquireLinkIntervalS: 30,
    labels: { region: 'eu-west', tier: 'gold' },
    status: 'ACTIVE',
    statusReason: null,
    version,
    credentialsVersion: 3,
    tpsLimit: { tpsCap: 200, burstWindowMs: 1000, enforcementMode: 'hard' },
    createdAt: now,
    createdBy: 'user:bench',
    updatedAt: now,
    updatedBy: ACTOR,
  };
}

/** Built exactly as appendConfigEvent builds it, except that `type` is the bench subject. */
function envelope(subject: string, operatorId: string, version: number): EventEnvelope {
  return {
    eventId: randomUUID(),
    type: subject,
    operatorId,
    version,
    occurredAt: new Date().toISOString(),
    actor: ACTOR,
    data: { operator: operatorSnapshot(operatorId, version) },
  };
}

/** The raw baseline awaits its acks in batches of 500: its fastest here (2,000 was a third slower). */
const ACK_BATCH = 500;
const OPERATORS = Number(process.env.BENCH_OPERATORS ?? 1000);

/** Event i of the backlog: operators round-robin, each one's versions in order. */
const eventAt = (operators: string[], subject: string, i: number) =>
  envelope(subject, operators[i % operators.length]!, Math.floor(i / operators.length) + 1);

/** Raw JetStream: async publishes, acks awaited per batch, msgID = eventId, same envelopes. */
async function baseline(nc: NatsConnection, subject: string, n: number, operators: string[]): Promise<number> {
  const js = nc.jetstream();
  const start = performance.now();
  for (let i = 0; i < n; i += ACK_BATCH) {
    const acks = [];
    for (let k = i; k < Math.min(n, i + ACK_BATCH); k++) {
      const env = eventAt(operators, subject, k);
      acks.push(js.publish(subject, JSON.stringify(env), { msgID: env.eventId }));
    }
    await Promise.all(acks);
  }
  return performance.now() - start;
}

/**
 * Appends n events, one transaction each, like n separate config changes.
 *
 * This issues appendConfigEvent's INSERT itself (same columns, same values) rather than calling
 * it: appendConfigEvent always sets subject = operator.config.<change>, and the relay publishes
 * each row to its `subject` column, so rows written by it would land in the real OPERATOR_EVENTS
 * stream and reach its consumers. Writing subject = bench.<id>.operator.config.updated keeps
 * every message in the throwaway stream. Keep this statement in step with appendConfigEvent.
 */
async function appendEvents(db: Pool, subject: string, n: number, operators: string[]): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const env = eventAt(operators, subject, i);
    await inTransaction(db, (tx) =>
      tx.query(
        `INSERT INTO ops.event_outbox (event_id, subject, operator_id, version, payload, created_by, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $6)`,
        [env.eventId, env.type, env.operatorId, env.version, env, env.actor],
      ),
    );
  }
  return performance.now() - start;
}

async function flushAll(relay: OutboxRelay, db: Pool, n: number): Promise<number> {
  const start = performance.now();
  const sent = await relay.flush();
  const ms = performance.now() - start;
  const { rows } = await db.query<{ pending: string }>('SELECT count(*) AS pending FROM ops.event_outbox_pending');
  if (sent !== n || rows[0]?.pending !== '0') {
    throw new Error(`flush published ${sent} of ${n} events; ${rows[0]?.pending} still pending`);
  }
  return ms;
}

interface Run {
  n: number;
  baselineMs: number;
  appendMs: number;
  flushMs: number;
}

/** One backlog: the baseline's publishes before the append and flush, or after them (`baselineLast`). */
async function runOnce(
  nc: NatsConnection,
  db: Pool,
  relay: OutboxRelay,
  prefix: string,
  n: number,
  baselineLast = false,
): Promise<Run> {
  const operators = Array.from({ length: Math.min(OPERATORS, n) }, () => randomUUID());
  let baselineMs = baselineLast ? 0 : await baseline(nc, `${prefix}.baseline`, n, operators);
  const appendMs = await appendEvents(db, `${prefix}.operator.config.updated`, n, operators);
  const flushMs = await flushAll(relay, db, n);
  if (baselineLast) baselineMs = await baseline(nc, `${prefix}.baseline`, n, operators);
  return { n, baselineMs, appendMs, flushMs };
}

/**
 * `rounds` backlogs of n, the baseline first in one round and last in the next, their times
 * added up: a flush lasts about a second, and one alone moved with whatever else the machine did.
 */
async function runRounds(
  nc: NatsConnection,
  db: Pool,
  relay: OutboxRelay,
  prefix: string,
  n: number,
  rounds: number,
): Promise<{ total: Run; ratios: number[] }> {
  const total: Run = { n: 0, baselineMs: 0, appendMs: 0, flushMs: 0 };
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const run = await runOnce(nc, db, relay, prefix, n, r % 2 === 1);
    ratios.push(run.baselineMs / run.flushMs);
    total.n += run.n;
    total.baselineMs += run.baselineMs;
    total.appendMs += run.appendMs;
    total.flushMs += run.flushMs;
  }
  return { total, ratios };
}

function report(run: Run, ratios: number[], perRound: number, payloadBytes: number): void {
  const rate = (ms: number) => (run.n * 1000) / ms;
  const base = rate(run.baselineMs);
  const flush = rate(run.flushMs);
  const append = rate(run.appendMs);
  const e2e = rate(run.appendMs + run.flushMs);
  const cols: [string, string][] = [
    ['N', String(run.n)],
    ['payload B', String(payloadBytes)],
    ['baseline pub ev/s', base.toFixed(0)],
    ['outbox flush ev/s', flush.toFixed(0)],
    ['append ev/s', append.toFixed(0)],
    ['end-to-end ev/s', e2e.toFixed(0)],
    ['flush/baseline', (flush / base).toFixed(2)],
    ['e2e/baseline', (e2e / base).toFixed(2)],
  ];
  const widths = cols.map(([h, v]) => Math.max(h.length, v.length));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padStart(widths[i] ?? 0)).join(' | ')} |`;
  console.log(line(cols.map(([h]) => h)));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  console.log(line(cols.map(([, v]) => v)));
  console.log(
    `(${ratios.length} backlogs of ${perRound}; wall time in all: baseline ${(run.baselineMs / 1000).toFixed(2)} s, ` +
      `append ${(run.appendMs / 1000).toFixed(2)} s, flush ${(run.flushMs / 1000).toFixed(2)} s; ` +
      `end-to-end = N / (append + flush); flush/baseline by backlog: ${ratios.map((r) => r.toFixed(2)).join(', ')})`,
  );
  console.log(
    `flush of a ${perRound}-event backlog over ${Math.min(OPERATORS, perRound)} operators, ${ratios.length} times: ${(flush / base).toFixed(3)} of raw async publishing (goal ≥ 0.6): ${flush / base >= 0.6 ? 'goal met' : 'goal not met'}`,
  );
}

async function main(cleanup: Cleanup): Promise<void> {
  const n = intEnv('BENCH_N', 10_000);
  const rounds = intEnv('BENCH_ROUNDS', 3);
  const config = loadConfig();
  const id = randomBytes(4).toString('hex');
  const streamName = `BENCH_${id}`;
  const prefix = `bench.${id}`;
  const dbName = `operator_mgmt_bench_${id}`;

  const nc = await connectNats(config.nats, 'operator-management-bench');
  cleanup.add('close NATS', () => nc.drain());
  const jsm = await nc.jetstreamManager();
  // Same storage and duplicate window as the real stream (ensureStream), so msgID dedup costs the same.
  await jsm.streams.add({
    name: streamName,
    subjects: [`${prefix}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    duplicate_window: 10 * 60 * 1e9,
  });
  cleanup.add(`delete stream ${streamName}`, () => jsm.streams.delete(streamName));

  const benchUrl = await createBenchDatabase(config, cleanup, dbName);

  const db = createPool({ ...config.postgres, url: benchUrl });
  cleanup.add('close PostgreSQL pool', () => db.end());
  const relay = new OutboxRelay(db, nc, createLogger('warn', 'bench'));
  const payloadBytes = Buffer.byteLength(
    JSON.stringify(envelope(`${prefix}.operator.config.updated`, randomUUID(), 1)),
  );

  console.log(`stream ${streamName} on ${prefix}.>, database ${dbName}; warm-up with ${WARMUP_N} events…`);
  await runOnce(nc, db, relay, prefix, Math.min(WARMUP_N, n));
  console.log(`measuring ${rounds} backlogs of N = ${n}…\n`);
  const { total, ratios } = await runRounds(nc, db, relay, prefix, n, rounds);
  report(total, ratios, n, payloadBytes);

  const info = await jsm.streams.info(streamName);
  const expected = 2 * (Math.min(WARMUP_N, n) + n * rounds);
  if (info.state.messages !== expected) {
    throw new Error(`stream ${streamName} holds ${info.state.messages} messages, expected ${expected}`);
  }
}

runBench(main);
