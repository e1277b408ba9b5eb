import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import type { Pool } from 'pg';
import { connect } from 'nats';
import { createAdminApp } from '../src/api/admin-app';
import { createInternalApp } from '../src/api/internal-app';
import { createPool } from '../src/clients/postgres';
import { createRedis, type Redis } from '../src/clients/redis';
import { createLogger } from '../src/platform/logger';
import { createAdminServices } from '../src/services';
import type { CredentialsService } from '../src/services/credentials';
import { createKvStore, type KvStore } from '../src/clients/vault';
import nodeVault from 'node-vault';
import { expectNoSecret } from './support/secrets';
import { OperatorService } from '../src/services/operators';
import type { PrefixTableService } from '../src/services/prefix-tables';
import { RoutingSnapshotService } from '../src/services/routing-snapshot';
import { adminToken, newOperatorRequest, startHarness, type Harness } from './support/harness';
import { expectProblem } from './support/problems';
import { freePort } from './support/ports';
import { backendPid, waitUntilBlockedBy } from './support/pg-locks';
import { PrivateNats } from './support/private-nats';
import { onboardActive } from './support/rotation';
import { TcpProxy } from './support/tcp-proxy';

/**
 * A dependency that is down or too slow is a 503 problem that names it, with Retry-After, never
 * a 500: PostgreSQL refusing connections, a row lock held past the lock timeout, Temporal not
 * answering, a private Redis stopped, a private NATS stopped.
 */

async function waitForPong(redis: Redis): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if ((await redis.ping().catch(() => '')) === 'PONG') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the private redis-server did not start');
}

describe('a dependency down or too slow', () => {
  let h: Harness;
  const opened: Array<{ server: Server; pool: Pool }> = [];

  beforeAll(async () => {
    h = await startHarness({ worker: true });
  });
  afterAll(async () => {
    for (const { server, pool } of opened) {
      await new Promise((r) => server.close(r));
      await pool.end();
    }
    await h.stop();
  });

  /** The admin API on a pool of its own (the harness's other clients as they are). */
  async function adminOn(
    postgres: Partial<Harness['config']['postgres']>,
    temporal: Client = h.resources.temporal,
    redis: Redis = h.resources.redis,
    kv: KvStore = h.resources.kv,
  ): Promise<string> {
    const config = {
      ...h.config,
      postgres: { ...h.config.postgres, ...postgres },
      temporal: { ...h.config.temporal, callTimeoutMs: 1_000 },
    };
    const pool = createPool(config.postgres);
    const log = createLogger('silent');
    const resources = { ...h.resources, db: pool, temporal, redis, kv };
    const app = createAdminApp({ config, db: pool, log, ...createAdminServices(resources, config, log) });
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    opened.push({ server, pool });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/admin`;
  }
  const auth = () => ({ authorization: `Bearer ${adminToken()}` });

  it('answers 503 naming PostgreSQL when it refuses connections', async () => {
    // Nothing listens on port 1.
    const url = await adminOn({ url: 'postgres://postgres@127.0.0.1:1/operator_mgmt', connectTimeoutMs: 1000 });
    for (const path of ['/operators', '/prefix-tables', '/routing/explain?destination=2547']) {
      const res = await fetch(`${url}${path}`, { headers: auth() });
      const { body } = await expectProblem(res, 503);
      expect(body).toMatchObject({ dependency: 'PostgreSQL' });
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    }
  });

  it('answers 503 naming Temporal when Temporal does not answer', async () => {
    const { id } = await onboardActive(h);
    // Nothing listens on port 1: every call fails (or runs out of its deadline).
    const dead = new Client({
      connection: Connection.lazy({ address: '127.0.0.1:1' }),
      namespace: h.config.temporal.namespace,
    });
    const url = await adminOn({}, dead);
    const res = await fetch(`${url}/operators/${id}/workflows`, { headers: auth() });
    const { body } = await expectProblem(res, 503);
    expect(body).toMatchObject({ dependency: 'Temporal' });
    expect(res.headers.get('retry-after')).toBe('5');
  });

  it('answers 503 naming Redis when its Redis is down', async () => {
    const { id } = await onboardActive(h);
    // A private redis-server: the shared one is never stopped.
    const port = await freePort();
    const server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    const redis = createRedis({ ...h.config.redis, url: `redis://127.0.0.1:${port}` });
    redis.on('error', () => undefined);
    try {
      await waitForPong(redis);
      const url = await adminOn({}, h.resources.temporal, redis);
      expect((await fetch(`${url}/operators/${id}/health`, { headers: auth() })).status).toBe(200);
      server.kill('SIGKILL');
      await once(server, 'exit');
      const res = await fetch(`${url}/operators/${id}/health`, { headers: auth() });
      const { body } = await expectProblem(res, 503);
      expect(body).toMatchObject({ dependency: 'Redis' });
      expect(res.headers.get('retry-after')).toBe('5');
    } finally {
      if (server.exitCode === null) server.kill('SIGKILL');
      redis.disconnect();
    }
  });

  it('answers 503 naming Redis within REDIS_COMMAND_TIMEOUT_MS when Redis stops answering on an open connection', async () => {
    const { id } = await onboardActive(h);
    const target = new URL(h.config.redis.url);
    const proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 6379) });
    const redis = createRedis({ url: `redis://127.0.0.1:${proxy.port}`, commandTimeoutMs: 1_000 });
    redis.on('error', () => undefined);
    try {
      await waitForPong(redis);
      const url = await adminOn({}, h.resources.temporal, redis);
      expect((await fetch(`${url}/operators/${id}/health`, { headers: auth() })).status).toBe(200);
      proxy.stall(); // the connection stays open; nothing comes back
      const started = Date.now();
      const res = await fetch(`${url}/operators/${id}/health`, { headers: auth() });
      const { body } = await expectProblem(res, 503);
      expect(body).toMatchObject({ dependency: 'Redis' });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      redis.disconnect();
      await proxy.stop();
    }
  });

  it('answers 503 naming PostgreSQL soon after the statement timeout when PostgreSQL stops answering on an open connection', async () => {
    const { id } = await onboardActive(h);
    const target = new URL(h.config.postgres.url);
    const proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
    try {
      const proxied = Object.assign(new URL(target), { port: String(proxy.port) }).toString();
      // PostgreSQL's own statement timeout never arrives from a server that went silent: the
      // pool gives such a connection up 2 s past it.
      const url = await adminOn({ url: proxied, statementTimeoutMs: 1_000, poolMax: 1 });
      // One connection in the pool: the read after the stall goes out on it.
      for (let i = 0; i < 3; i++) {
        expect((await fetch(`${url}/operators/${id}`, { headers: auth() })).status).toBe(200);
      }
      proxy.stall(); // the connections open now stay open; nothing comes back
      const started = Date.now();
      const res = await fetch(`${url}/operators/${id}`, { headers: auth() });
      const { body } = await expectProblem(res, 503);
      expect(body).toMatchObject({ dependency: 'PostgreSQL' });
      expect(Date.now() - started).toBeLessThan(10_000);
      // The silent connection was given up: the next read opens a new one, which answers.
      expect((await fetch(`${url}/operators/${id}`, { headers: auth() })).status).toBe(200);
    } finally {
      await proxy.stop();
    }
  });

  it('answers 503 naming NATS when the routing snapshot cannot read its stream', async () => {
    // A private nats-server: the shared one is never stopped.
    const nats = await PrivateNats.start();
    const nc = await connect({ servers: nats.url, reconnect: false });
    try {
      const log = createLogger('silent');
      const snapshots = new RoutingSnapshotService({ db: h.resources.db, nats: nc, stream: h.config.nats.stream });
      const app = createInternalApp({
        config: h.config,
        log,
        operators: new OperatorService({ ...h.resources, config: h.config.temporal }),
        credentials: {} as CredentialsService,
        routing: { snapshots, prefixTables: {} as PrefixTableService },
      });
      const server: Server = await new Promise((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      opened.push({ server, pool: createPool(h.config.postgres) });
      await nats.stop('SIGKILL');
      const res = await fetch(
        `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/internal/routing/snapshot`,
      );
      const { body } = await expectProblem(res, 503);
      expect(body).toMatchObject({ dependency: 'NATS' });
      expect(res.headers.get('retry-after')).toBe('5');
    } finally {
      await nc.close().catch(() => undefined);
      await nats.stop().catch(() => undefined);
    }
  });

  it('answers 503 naming PostgreSQL when a row lock is held past the lock timeout, writing nothing', async () => {
    const { id } = await onboardActive(h);
    const before = (await (await h.api(`/operators/${id}`)).json()) as { version: number; name: string };
    const url = await adminOn({ lockTimeoutMs: 200 });
    const holder = await h.resources.db.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM ops.operators WHERE id = $1 FOR UPDATE', [id]);
      const res = await fetch(`${url}/operators/${id}`, {
        method: 'PATCH',
        headers: { ...auth(), 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Blocked rename' }),
      });
      const { body } = await expectProblem(res, 503);
      expect(body).toMatchObject({ dependency: 'PostgreSQL' });
      expect(res.headers.get('retry-after')).toBe('1');
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    expect(await (await h.api(`/operators/${id}`)).json()).toMatchObject({
      version: before.version,
      name: before.name,
    });
  });

  it('answers 503 naming PostgreSQL when its connection is reset in the middle of a transaction, writing nothing', async () => {
    const { id } = await onboardActive(h);
    const before = (await (await h.api(`/operators/${id}`)).json()) as { version: number; name: string };
    const target = new URL(h.config.postgres.url);
    const proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
    const throughProxy = Object.assign(new URL(h.config.postgres.url), { host: `127.0.0.1:${proxy.port}` });
    // A lock timeout far off: the 503 must come from the reset, not from waiting out the lock.
    const url = await adminOn({ url: throughProxy.toString(), lockTimeoutMs: 60_000 });
    const holder = await h.resources.db.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM ops.operators WHERE id = $1 FOR UPDATE', [id]);
      const rename = fetch(`${url}/operators/${id}`, {
        method: 'PATCH',
        headers: { ...auth(), 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Reset rename' }),
      });
      // The PATCH's transaction is open, waiting for the row: then its connection is reset.
      await waitUntilBlockedBy(h.resources.db, await backendPid(holder), { failure: 'the PATCH never waited' });
      const resetAt = Date.now();
      proxy.reset();
      const res = await rename;
      const { body } = await expectProblem(res, 503);
      expect(body).toMatchObject({ dependency: 'PostgreSQL' });
      expect(Date.now() - resetAt).toBeLessThan(30_000);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
      await proxy.stop();
    }
    expect(await (await h.api(`/operators/${id}`)).json()).toMatchObject({
      version: before.version,
      name: before.name,
    });
  });

  it('answers 503 naming Vault when Vault refuses to stage the password, starting nothing', async () => {
    // A real refusal: a token whose policy may not write the staging path (expired policies,
    // a mount gone alike). The request was right; Vault must be set right first.
    const root = nodeVault({ endpoint: h.config.vault.addr, token: 'dev-root-token' });
    await root.addPolicy({
      name: 'api-cannot-stage',
      rules: 'path "secret/data/ops/staging/*" { capabilities = ["read"] }',
    });
    const { auth: token } = (await root.tokenCreate({ policies: ['api-cannot-stage'], ttl: '10m' })) as {
      auth: { client_token: string };
    };
    const kv = await createKvStore({ ...h.config.vault, auth: { kind: 'token', token: token.client_token } });
    try {
      const url = await adminOn({}, h.resources.temporal, h.resources.redis, kv);
      const body = newOperatorRequest();
      const res = await fetch(`${url}/operators`, {
        method: 'POST',
        headers: { ...auth(), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      // Checked before anything that could print the answer on a failure.
      const text = await res.clone().text();
      expectNoSecret(text, body.password as string);
      expectNoSecret(text, token.client_token);
      const problem = await expectProblem(res, 503);
      expect(problem.body).toMatchObject({ dependency: 'Vault' });
      // The host is this request's own (names repeat across test files).
      const { rows } = await h.resources.db.query('SELECT 1 FROM ops.operators WHERE host = $1', [body.host]);
      expect(rows).toEqual([]);
    } finally {
      kv.close();
    }
  });
});
