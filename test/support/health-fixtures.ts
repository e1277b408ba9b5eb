import { randomBytes, randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Redis } from 'ioredis';
import type { NatsConnection } from 'nats';
import type { Db } from '../../src/clients/postgres';
import type { Config } from '../../src/platform/config';
import type { OperatorStatus } from '../../src/domain/operator';
import { HealthConsumer } from '../../src/health/consumer';
import { healthMetrics, type HealthMetrics } from '../../src/health/metrics';
import { HealthPipeline } from '../../src/health/pipeline';
import type { HealthReport } from '../../src/health/report';
import { createLogger } from '../../src/platform/logger';
import { createMetricsRegistry, type Registry } from '../../src/platform/metrics';

/** Health-ingestion test helpers: operators straight in SQL, reports, private streams. */

export async function insertOperator(
  db: Db,
  fields: { status?: OperatorStatus; version?: number; pendingCredentialsVersion?: number | null } = {},
): Promise<string> {
  const id = randomUUID();
  await db.query(
    `INSERT INTO ops.operators (id, name, host, port, system_id, bind_type, window_size, enquire_link_interval_s,
                                status, version, credentials_version, pending_credentials_version, created_by, updated_by)
     VALUES ($1, 'Health test', $2, 2775, 'acct', 'transceiver', 10, 30, $3, $4, 1, $5, 'test', 'test')`,
    [
      id,
      `h-${id}.example.net`,
      fields.status ?? 'ACTIVE',
      fields.version ?? 3,
      fields.pendingCredentialsVersion ?? null,
    ],
  );
  return id;
}

let seq = 0;

/** A valid report; reportedAt defaults to now plus a per-call millisecond, so each is distinct. */
export function report(operatorId: string, overrides: Partial<HealthReport> = {}): HealthReport {
  seq++;
  return {
    operatorId,
    status: 'UP',
    boundSessions: 2,
    inflight: 5,
    credentialsVersion: 1,
    reportedAt: new Date(Date.now() + seq).toISOString(),
    connectorInstance: 'connector-a',
    ...overrides,
  };
}

export interface Ingestion {
  prefix: string;
  stream: string;
  consumerName: string;
  registry: Registry;
  metrics: HealthMetrics;
  pipeline: HealthPipeline;
  consumer: HealthConsumer;
  /** Publishes to JetStream and waits for the stream's ack. */
  publish(operatorId: string, payload: unknown): Promise<void>;
  /** Another consumer replica on the same durable, with its own metrics. */
  replica(redis?: Redis): Promise<{ consumer: HealthConsumer; metrics: HealthMetrics }>;
  stop(): Promise<void>;
}

export interface IngestionDeps {
  config: Config;
  db: Db;
  redis: Redis;
  nats: NatsConnection;
  temporal: Client;
}

/**
 * A HealthConsumer on a stream and subject prefix of its own (the real `connector.health`
 * subject when `prefix` says so), with a fresh durable that starts at "now".
 */
export async function startIngestion(
  deps: IngestionDeps,
  options: { prefix?: string; stream?: string; batchMax?: number; retryDelayMs?: number; maxDeliveries?: number } = {},
): Promise<Ingestion> {
  const tag = randomBytes(4).toString('hex');
  const prefix = options.prefix ?? `test${tag}.connector.health`;
  const stream = options.stream ?? `HEALTH_TEST_${tag}`;
  const consumerName = `health-test-${tag}`;
  const ownStream = options.stream === undefined;
  const log = createLogger('silent');
  const consumerOptions = {
    stream,
    streamMaxAgeS: 600,
    consumer: consumerName,
    subjectPrefix: prefix,
    batchMax: options.batchMax ?? 100,
    // As the health process runs by default (HEALTH_BATCHES_IN_FLIGHT).
    batchesInFlight: 2,
    maxAckPending: 1000,
    retryDelayMs: options.retryDelayMs ?? 300,
    maxDeliveries: options.maxDeliveries ?? 5,
    deliverNew: true,
    inactiveThresholdMs: 10 * 60_000,
  };
  const make = (redis: Redis) => {
    const registry = createMetricsRegistry();
    const metrics = healthMetrics(registry);
    const pipeline = new HealthPipeline({ ...deps, redis, metrics });
    const consumer = new HealthConsumer({ nats: deps.nats, pipeline, metrics, log }, consumerOptions);
    return { registry, metrics, pipeline, consumer };
  };
  const first = make(deps.redis);
  await first.consumer.start();
  const consumers = [first.consumer];
  const js = deps.nats.jetstream();

  return {
    prefix,
    stream,
    consumerName,
    ...first,
    async publish(operatorId, payload) {
      const data = typeof payload === 'string' ? payload : JSON.stringify(payload);
      await js.publish(`${prefix}.${operatorId}`, data);
    },
    async replica(redis = deps.redis) {
      const other = make(redis);
      await other.consumer.start();
      consumers.push(other.consumer);
      return { consumer: other.consumer, metrics: other.metrics };
    },
    async stop() {
      await Promise.all(consumers.map((c) => c.stop()));
      const jsm = await deps.nats.jetstreamManager();
      await jsm.consumers.delete(stream, consumerName).catch(() => undefined);
      if (ownStream) await jsm.streams.delete(stream).catch(() => undefined);
    },
  };
}

export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} never happened${last ? ` (last error: ${String(last)})` : ''}`);
}

/** The sum of a counter's values whose labels include `labels`. */
export async function counterValue(
  metric: { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> },
  labels: Record<string, string> = {},
): Promise<number> {
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
    .reduce((sum, v) => sum + v.value, 0);
}

export async function logCount(db: Db, operatorId: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    'SELECT count(*) AS n FROM ops.operator_health_log WHERE operator_id = $1',
    [operatorId],
  );
  return Number(rows[0]?.n ?? 0);
}
