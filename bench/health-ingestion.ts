/**
 * Health ingestion against the real local stack (`npm run stack:up`), beside the raw rates of its
 * three parts measured in the same run. Usage: `npm run bench:health-ingestion`
 * (BENCH_N=<reports>, default 20000; BENCH_RATE_S=<seconds at 1,000/s>, default 10).
 *
 * Prints: raw JetStream durable consume with acks, raw pipelined Redis `SET ... EX 60`, raw
 * batched PostgreSQL insert into the health log, the combined limit 1/(1/c + 1/r + 1/p), the
 * sustained end-to-end rate (a backlog of N reports drained by one HealthConsumer) with its
 * ratio to that limit, and p50/p99 from publish to cache-visible at a fixed 1,000 reports/s.
 *
 * Nothing touches the service's data: streams BENCH_HEALTH_<id>*, subjects `bench<id>.…`, a
 * throwaway database operator_mgmt_bench_<id>, Redis keys of throwaway operator ids (they expire
 * in 60 s); all removed at the end, on failure and on SIGINT/SIGTERM too.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, type NatsConnection } from 'nats';
import { loadConfig } from '../src/platform/config';
import { connectNats } from '../src/clients/nats';
import { createPool, type Db } from '../src/clients/postgres';
import { createRedis, type Redis } from '../src/clients/redis';
import { createTemporalClient } from '../src/clients/temporal';
import { insertHealthReports } from '../src/db/health-log';
import { HealthConsumer } from '../src/health/consumer';
import { healthMetrics } from '../src/health/metrics';
import { HealthPipeline, type IngestOutcome } from '../src/health/pipeline';
import type { HealthReport, ValidReport } from '../src/health/report';
import { createLogger } from '../src/platform/logger';
import { createMetricsRegistry } from '../src/platform/metrics';
import { createBenchDatabase } from './bench-database';
import { runBench, type Cleanup } from './cleanup';

const OPERATORS = 200;
const BATCH = 500;

function envInt(name: string, fallback: number): number {
  const raw = process.env[name] ?? String(fallback);
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

const rate = (n: number, ms: number) => (n * 1000) / ms;
const fmt = (r: number) => `${Math.round(r).toLocaleString('en-US')} /s`;

let seq = 0;
function makeReport(operatorId: string): HealthReport {
  seq++;
  return {
    operatorId,
    status: 'UP',
    boundSessions: 4,
    inflight: seq % 50,
    credentialsVersion: 3,
    // Distinct and increasing per report: each is the newest its operator has seen.
    reportedAt: new Date(Date.now() - 30_000 + seq).toISOString(),
    connectorInstance: 'bench-connector-1',
  };
}

async function addStream(nc: NatsConnection, name: string, subjects: string[], cleanup: Cleanup): Promise<void> {
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({
    name,
    subjects,
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    duplicate_window: 120 * 1e9,
  });
  cleanup.add(`delete stream ${name}`, () => jsm.streams.delete(name));
}

/** Publishes with up to `window` acks outstanding (what a busy connector fleet looks like). */
async function publishAll(nc: NatsConnection, subjectOf: (r: HealthReport) => string, reports: HealthReport[]) {
  const js = nc.jetstream();
  const window = 500;
  for (let i = 0; i < reports.length; i += window) {
    await Promise.all(reports.slice(i, i + window).map((r) => js.publish(subjectOf(r), JSON.stringify(r))));
  }
}

async function rawConsume(nc: NatsConnection, stream: string, n: number): Promise<number> {
  const jsm = await nc.jetstreamManager();
  const durable = 'bench-raw';
  await jsm.consumers.add(stream, {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    max_ack_pending: 5000,
  });
  const consumer = await nc.jetstream().consumers.get(stream, durable);
  const start = performance.now();
  const messages = await consumer.consume({ max_messages: BATCH });
  let got = 0;
  for await (const m of messages) {
    JSON.parse(Buffer.from(m.data).toString('utf8'));
    m.ack();
    if (++got >= n) break;
  }
  await nc.flush();
  return rate(n, performance.now() - start);
}

async function rawRedis(redis: Redis, reports: HealthReport[]): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < reports.length; i += BATCH) {
    const p = redis.pipeline();
    for (const r of reports.slice(i, i + BATCH)) p.set(`ops:health:${r.operatorId}`, JSON.stringify(r), 'EX', 60);
    await p.exec();
  }
  return rate(reports.length, performance.now() - start);
}

async function rawPg(db: Db, reports: HealthReport[]): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < reports.length; i += BATCH) await insertHealthReports(db, reports.slice(i, i + BATCH));
  return rate(reports.length, performance.now() - start);
}

/** The pipeline, noting when each report's cache write is done (ingest resolves after it). */
class TimedPipeline extends HealthPipeline {
  readonly doneAt = new Map<string, number>();
  override async ingest(reports: readonly ValidReport[]): Promise<IngestOutcome[]> {
    const outcomes = await super.ingest(reports);
    const now = performance.now();
    for (const { report } of reports) this.doneAt.set(`${report.operatorId}|${report.reportedAt}`, now);
    return outcomes;
  }
}

async function main(cleanup: Cleanup): Promise<void> {
  const n = envInt('BENCH_N', 20_000);
  const rateSeconds = envInt('BENCH_RATE_S', 10);
  const config = loadConfig();
  const id = randomBytes(4).toString('hex');
  const prefix = `bench${id}`;
  const dbName = `operator_mgmt_bench_${id}`;

  const nc = await connectNats(config.nats, 'operator-management-bench');
  cleanup.add('close NATS', () => nc.drain());
  const benchUrl = await createBenchDatabase(config, cleanup, dbName);
  const db = createPool({ ...config.postgres, url: benchUrl });
  cleanup.add('close PostgreSQL pool', () => db.end());
  const redis = createRedis(config.redis);
  cleanup.add('close Redis', () => redis.quit());
  const temporal = await createTemporalClient(config.temporal);
  cleanup.add('close Temporal', () => temporal.connection.close());

  const operatorIds = Array.from({ length: OPERATORS }, () => randomUUID());
  await db.query(
    `INSERT INTO ops.operators (id, name, host, port, system_id, bind_type, window_size, enquire_link_interval_s,
                                status, version, credentials_version, created_by, updated_by)
     SELECT id, 'Bench', 'h-' || id || '.example.net', 2775, 'bench', 'transceiver', 10, 30, 'ACTIVE', 2, 3,
            'bench', 'bench'
       FROM unnest($1::uuid[]) AS id`,
    [operatorIds],
  );
  cleanup.add('delete bench health keys', () => redis.del(...operatorIds.map((o) => `ops:health:${o}`)));
  const reportsFor = (count: number) =>
    Array.from({ length: count }, (_, i) => makeReport(operatorIds[i % OPERATORS]!));

  // Raw parts, each on its own.
  const rawStream = `BENCH_HEALTH_${id}_RAW`;
  await addStream(nc, rawStream, [`${prefix}.raw.>`], cleanup);
  await publishAll(nc, (r) => `${prefix}.raw.${r.operatorId}`, reportsFor(n));
  const consumeRate = await rawConsume(nc, rawStream, n);
  const redisRate = await rawRedis(redis, reportsFor(n));
  const pgRate = await rawPg(db, reportsFor(n));
  const combined = 1 / (1 / consumeRate + 1 / redisRate + 1 / pgRate);
  await redis.del(...operatorIds.map((o) => `ops:health:${o}`));

  // The pipeline end to end: a backlog of n reports drained by one consumer.
  const stream = `BENCH_HEALTH_${id}`;
  const events = `BENCH_HEALTH_${id}_EVENTS`;
  await addStream(nc, events, [`${prefix}.operator.health`], cleanup);
  const metrics = healthMetrics(createMetricsRegistry());
  const pipeline = new TimedPipeline({
    db,
    redis,
    nats: nc,
    temporal,
    metrics,
    eventSubject: `${prefix}.operator.health`,
  });
  const consumerOptions = {
    stream,
    streamMaxAgeS: 600,
    consumer: 'bench',
    subjectPrefix: `${prefix}.connector.health`,
    batchMax: config.health.batchMax,
    maxAckPending: config.health.maxAckPending,
    retryDelayMs: 1000,
    maxDeliveries: 5,
  };
  const subjectOf = (r: HealthReport) => `${prefix}.connector.health.${r.operatorId}`;
  const backlog = reportsFor(n);
  // The stream is created by the consumer; a first consumer start makes it, then stops.
  const log = createLogger('warn', 'bench');
  const warm = new HealthConsumer({ nats: nc, pipeline, metrics, log }, { ...consumerOptions, deliverNew: true });
  await warm.start();
  await warm.stop();
  cleanup.add(`delete stream ${stream}`, async () => (await nc.jetstreamManager()).streams.delete(stream));
  await publishAll(nc, subjectOf, backlog);

  const consumer = new HealthConsumer({ nats: nc, pipeline, metrics, log }, consumerOptions);
  const start = performance.now();
  await consumer.start();
  const consumed = async () => (await metrics.consumed.get()).values.reduce((s, v) => s + v.value, 0);
  while ((await consumed()) < n) await new Promise((r) => setTimeout(r, 20));
  const e2eRate = rate(n, performance.now() - start);

  // Latency at a fixed 1,000 reports/s: 10 every 10 ms.
  pipeline.doneAt.clear();
  const js = nc.jetstream();
  const sentAt = new Map<string, number>();
  const total = 1000 * rateSeconds;
  const paced = reportsFor(total);
  const t0 = performance.now();
  const acks: Promise<unknown>[] = [];
  for (let i = 0; i < total; i += 10) {
    const due = t0 + i; // i reports at 1/ms
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    for (const r of paced.slice(i, i + 10)) {
      sentAt.set(`${r.operatorId}|${r.reportedAt}`, performance.now());
      acks.push(js.publish(subjectOf(r), JSON.stringify(r)));
    }
  }
  await Promise.all(acks);
  const offered = rate(total, performance.now() - t0);
  while (pipeline.doneAt.size < total) await new Promise((r) => setTimeout(r, 20));
  await consumer.stop();
  const latencies = [...sentAt].map(([key, at]) => pipeline.doneAt.get(key)! - at).sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;

  console.log(`health ingestion, ${n} reports over ${OPERATORS} operators, batches up to ${config.health.batchMax}`);
  console.log(`  raw JetStream durable consume + ack   ${fmt(consumeRate)}`);
  console.log(`  raw Redis pipelined SET ... EX 60      ${fmt(redisRate)}`);
  console.log(`  raw PostgreSQL batched insert (${BATCH})  ${fmt(pgRate)}`);
  console.log(`  combined limit 1/(1/c + 1/r + 1/p)     ${fmt(combined)}`);
  // The speed issue's goals: the overlapped stages beat the serial limit; p99 under 20 ms at 1,000/s.
  const verdict = (ok: boolean) => (ok ? 'goal met' : 'goal not met');
  console.log(
    `  end to end (log + cache + ack)         ${fmt(e2eRate)}  = ${(e2eRate / combined).toFixed(2)} of the limit (goal ≥ 1.0): ${verdict(e2eRate >= combined)}`,
  );
  console.log(
    `  at ${fmt(offered)} for ${rateSeconds}s: publish -> cache-visible p50 ${pct(50).toFixed(1)} ms, p99 ${pct(99).toFixed(1)} ms, max ${latencies[latencies.length - 1]!.toFixed(1)} ms (goal p99 < 20 ms): ${verdict(pct(99) < 20)}`,
  );
}

runBench(main);
