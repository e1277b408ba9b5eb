import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Pool } from 'pg';
import { Redis as IORedis } from 'ioredis';
import type { Client } from '@temporalio/client';
import { loadConfig } from '../../src/platform/config';
import { createPool } from '../../src/clients/postgres';
import { createRedis, type Redis } from '../../src/clients/redis';
import { connectNats, type NatsConnection } from '../../src/clients/nats';
import { createKvStore, type KvStore } from '../../src/clients/vault';
import { createTemporalClient } from '../../src/clients/temporal';
import { checkReadiness, createReadinessChecks, requiredChecks } from '../../src/platform/readiness';
import { createOpsApp } from '../../src/api/shared/ops-app';
import { createMetricsRegistry } from '../../src/platform/metrics';

const DEPENDENCIES = ['postgres', 'redis', 'nats', 'vault', 'temporal'];

describe('ops app: /healthz, /readyz, /metrics against the real stack', () => {
  const config = loadConfig();
  let db: Pool;
  let redis: Redis;
  let deadRedis: Redis;
  let nats: NatsConnection;
  let kv: KvStore;
  let temporal: Client;
  const servers: Server[] = [];

  beforeAll(async () => {
    db = createPool(config.postgres);
    redis = createRedis(config.redis);
    nats = await connectNats(config.nats, 'operator-management-readiness-test');
    kv = await createKvStore(config.vault);
    temporal = await createTemporalClient(config.temporal);
    // Nothing listens on port 1: every command fails at once, no reconnect loop.
    deadRedis = new IORedis('redis://127.0.0.1:1', {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: true,
      retryStrategy: () => null,
    });
    deadRedis.on('error', () => undefined);
  });

  afterAll(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    // After a failed connect the client is already 'end'; disconnect() then would arm ioredis'
    // 2s disconnectTimeout on a socket that never closes again, holding the worker open.
    if (deadRedis.status !== 'end') deadRedis.disconnect();
    await redis.quit();
    await nats.close();
    await temporal.connection.close();
    await db.end();
  });

  async function serve(deps: { redis: Redis }, required?: ReadonlySet<string>): Promise<string> {
    const checks = createReadinessChecks({ db, redis: deps.redis, nats, kv, temporal });
    const app = createOpsApp(checks, createMetricsRegistry(), required);
    const server = app.listen(0, '127.0.0.1');
    servers.push(server);
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('is ready when every dependency answers', async () => {
    const base = await serve({ redis });

    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });

    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { status: string; checks: Record<string, string> };
    expect(body.status).toBe('ready');
    expect(Object.keys(body.checks).sort()).toEqual([...DEPENDENCIES].sort());
    for (const name of DEPENDENCIES) expect(body.checks[name]).toBe('up');

    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await metrics.text();
    expect(text).toMatch(/^# HELP process_cpu_user_seconds_total/m);
    expect(text).toMatch(/^nodejs_heap_size_total_bytes \d+/m);
  });

  it('answers 503 problem+json naming the dependency that is down', async () => {
    const base = await serve({ redis: deadRedis });

    const started = Date.now();
    const res = await fetch(`${base}/readyz`);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const body = (await res.json()) as {
      type: string;
      title: string;
      status: number;
      detail: string;
      checks: Record<string, string>;
    };
    expect(body.title).toBe('Not ready');
    expect(body.status).toBe(503);
    expect(typeof body.type).toBe('string');
    expect(body.detail).toBe('down: redis');
    expect(body.checks.redis).not.toBe('up');
    expect(body.checks.redis).toEqual(expect.any(String));
    for (const name of DEPENDENCIES.filter((n) => n !== 'redis')) expect(body.checks[name]).toBe('up');
    expect(JSON.stringify(body)).not.toContain('dev-root-token');

    // Liveness does not depend on the dependencies.
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('stays ready with a dependency its role can do without, and says it is degraded', async () => {
    // The api role needs PostgreSQL only: with Redis down, health reads fail but config reads work.
    const base = await serve({ redis: deadRedis }, requiredChecks(['api']));
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; degraded: string[]; checks: Record<string, string> };
    expect(body).toMatchObject({ status: 'ready', degraded: ['redis'] });
    expect(body.checks.redis).not.toBe('up');
  });

  it('is not ready without a dependency its role needs', async () => {
    // The health process cannot cache a report without Redis.
    const base = await serve({ redis: deadRedis }, requiredChecks(['health']));
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { detail: string }).detail).toBe('down: redis');
  });
});

// Checks of its own, no stack: what checkReadiness does with a check that hangs or leaks.
describe('checkReadiness', () => {
  it('bounds a hung check by its timeout and keeps reasons free of credentials', async () => {
    const started = Date.now();
    const report = await checkReadiness(
      {
        hung: () => new Promise<void>(() => undefined),
        leaky: async () => {
          throw new Error('connect to postgres://admin:hunter2@db.internal:5432/x failed, token=abc123');
        },
        fine: async () => undefined,
      },
      { guardMs: 300 },
    );
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(report.ok).toBe(false);
    expect(report.checks.fine).toBe('up');
    expect(report.checks.hung).toMatch(/timed out/);
    expect(report.checks.leaky).not.toContain('hunter2');
    expect(report.checks.leaky).not.toContain('abc123');
    expect(report.checks.leaky).toContain('db.internal');
  });
});
