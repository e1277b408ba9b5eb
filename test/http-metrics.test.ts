import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdminApp } from '../src/api/admin-app';
import { createLogger } from '../src/platform/logger';
import { createMetricsRegistry } from '../src/platform/metrics';
import { createAdminServices } from '../src/services';
import { adminToken, startHarness, type Harness } from './support/harness';
import { onboardActive } from './support/rotation';

/** HTTP metrics on the admin listener: each answer moves its series, by route template, never by id. */

describe('HTTP metrics', () => {
  let h: Harness;
  let server: Server;
  let url: string;
  const registry = createMetricsRegistry();

  beforeAll(async () => {
    h = await startHarness();
    const log = createLogger('silent');
    const app = createAdminApp({
      config: h.config,
      db: h.resources.db,
      log,
      registry,
      ...createAdminServices(h.resources, h.config, log),
    });
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/admin`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await h.stop();
  });

  const count = async (labels: Record<string, string>) => {
    const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'http_requests_total');
    const values = (metric?.values ?? []) as Array<{ labels: Record<string, string>; value: number }>;
    return values
      .filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
      .reduce((sum, v) => sum + v.value, 0);
  };

  it('counts each answer by route template, method and status, and times it', async () => {
    const { id } = await onboardActive(h);
    const auth = { authorization: `Bearer ${adminToken()}` };
    expect((await fetch(`${url}/operators/${id}`, { headers: auth })).status).toBe(200);
    expect((await fetch(`${url}/operators/${id}`, { headers: auth })).status).toBe(200);
    expect((await fetch(`${url}/operators/00000000-0000-4000-8000-000000000000`, { headers: auth })).status).toBe(404);
    expect((await fetch(`${url}/nowhere`, { headers: auth })).status).toBe(404);

    const route = '/v1/admin/operators/:id';
    expect(await count({ listener: 'admin', route, method: 'GET', status: '200' })).toBe(2);
    expect(await count({ listener: 'admin', route, method: 'GET', status: '404' })).toBe(1);
    expect(await count({ listener: 'admin', route: 'unmatched', status: '404' })).toBe(1);
    const text = await registry.metrics();
    expect(text).not.toContain(id);
    expect(text).toMatch(
      /http_request_duration_seconds_count\{listener="admin",route="\/v1\/admin\/operators\/:id",method="GET"\} 3/,
    );
  });
});
