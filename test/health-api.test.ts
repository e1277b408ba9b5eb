import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { createAdminApp } from '../src/api/admin-app';
import { createInternalApp } from '../src/api/internal-app';
import { loadConfig } from '../src/platform/config';
import { healthKey } from '../src/domain/health';
import { healthMetrics } from '../src/health/metrics';
import { HealthPipeline } from '../src/health/pipeline';
import { createLogger } from '../src/platform/logger';
import { createMetricsRegistry } from '../src/platform/metrics';
import { openResources, type Resources } from '../src/platform/resources';
import { CredentialsService } from '../src/services/credentials';
import { createAdminServices } from '../src/services';
import { counterValue, insertOperator, logCount, report } from './support/health-fixtures';
import { adminToken } from './support/harness';

/** POST /v1/internal/operators/{id}/health and GET /v1/admin/operators/{id}/health. */

describe('health over HTTP', () => {
  const config = loadConfig();
  const log = createLogger('silent');
  const metrics = healthMetrics(createMetricsRegistry());
  let resources: Resources;
  let servers: Server[] = [];
  let internalUrl: string;
  let adminUrl: string;

  const listen = (app: { listen: (port: number, host: string, cb: () => void) => Server }) =>
    new Promise<string>((resolve) => {
      const server = app.listen(0, '127.0.0.1', () =>
        resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
      );
      servers.push(server);
    });

  beforeAll(async () => {
    resources = await openResources(config, log);
    const pipeline = new HealthPipeline({ ...resources, metrics });
    const services = createAdminServices(resources, config, log);
    const credentials = new CredentialsService({ db: resources.db, kv: resources.kv, log });
    internalUrl = `${await listen(createInternalApp({ config, log, operators: services.operators, credentials, health: { pipeline, metrics, log } }))}/v1/internal`;
    adminUrl = `${await listen(createAdminApp({ config, db: resources.db, log, ...services }))}/v1/admin`;
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    servers = [];
    await resources?.close();
  });

  const post = (id: string, body: unknown) =>
    fetch(`${internalUrl}/operators/${id}/health`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const getHealth = (id: string, headers: Record<string, string> = { authorization: `Bearer ${adminToken()}` }) =>
    fetch(`${adminUrl}/operators/${id}/health`, { headers });

  it('takes a report through the same pipeline and serves it back with its history', async () => {
    const id = await insertOperator(resources.db);
    const first = report(id, { status: 'UP' });
    const res = await post(id, first);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: true, statusChanged: true });
    const second = report(id, { status: 'UP', inflight: 0 });
    expect(await (await post(id, second)).json()).toEqual({ accepted: true, statusChanged: false });
    expect(await logCount(resources.db, id)).toBe(2);
    expect(await counterValue(metrics.consumed, { source: 'http' })).toBeGreaterThanOrEqual(2);

    const got = await getHealth(id);
    expect(got.status).toBe(200);
    const body = (await got.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      operatorId: id,
      status: 'UP',
      current: { status: 'UP', previousStatus: 'UP', inflight: 0, reportedAt: second.reportedAt },
      history: [
        { reportedAt: second.reportedAt, inflight: 0 },
        { reportedAt: first.reportedAt, inflight: 5 },
      ],
    });
    expect(body.expiresInS).toBeGreaterThan(0);
    expect(body.expiresInS).toBeLessThanOrEqual(60);

    // The key gone (the connector went quiet for a minute): unknown, history still there.
    await resources.redis.del(healthKey(id));
    expect(await (await getHealth(id)).json()).toMatchObject({
      status: 'UNKNOWN',
      current: null,
      expiresInS: null,
      history: [{}, {}],
    });
  });

  it('refuses a bad report with problem+json naming the field, counts it, stores nothing', async () => {
    const id = await insertOperator(resources.db);
    const before = await counterValue(metrics.rejected, { source: 'http' });
    const res = await post(id, { ...report(id), status: 'SLEEPY', boundSessions: -1 });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await res.json()) as { errors: { field: string }[] };
    expect(problem.errors.map((e) => e.field).sort()).toEqual(['boundSessions', 'status']);
    expect(JSON.stringify(problem)).not.toContain('SLEEPY');

    const other = await post(id, report(randomUUID()));
    expect(other.status).toBe(400);
    expect(((await other.json()) as { errors: { field: string }[] }).errors[0]?.field).toBe('operatorId');

    const ghost = randomUUID();
    expect((await post(ghost, report(ghost))).status).toBe(404);
    expect(await counterValue(metrics.rejected, { source: 'http' })).toBe(before + 3);
    expect(await logCount(resources.db, id)).toBe(0);
    expect(await resources.redis.exists(healthKey(id))).toBe(0);
  });

  it('needs an admin token to read health, and 404s an unknown operator', async () => {
    const id = await insertOperator(resources.db);
    expect((await getHealth(id, {})).status).toBe(401);
    expect((await getHealth(randomUUID())).status).toBe(404);
    expect((await getHealth('not-a-uuid')).status).toBe(400);
  });
});
