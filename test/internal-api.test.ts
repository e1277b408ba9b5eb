import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createInternalApp, createInternalServer } from '../src/api/internal-app';
import type { Config } from '../src/platform/config';
import { createLogger } from '../src/platform/logger';
import { CredentialsService } from '../src/services/credentials';
import { OperatorService } from '../src/services/operators';
import { PrefixTableService } from '../src/services/prefix-tables';
import { RoutingSnapshotService } from '../src/services/routing-snapshot';
import { internalTls, mtlsGet, standardPki, type CertFiles, type StandardPki } from './support/certs';
import { adminToken, startHarness, type Harness } from './support/harness';
import { onboardActive } from './support/rotation';

/** The internal listener over real mTLS with certificates made here, beside the admin listener. */

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

describe('internal API (mTLS)', () => {
  let h: Harness;
  let p: StandardPki;
  let server: Server;
  let port: number;

  const get = async (urlPath: string, client?: CertFiles): Promise<Answer> => {
    const res = await mtlsGet(port, urlPath, p.ca.cert, client);
    return { status: res.status, body: JSON.parse(res.text) as Record<string, unknown> };
  };

  beforeAll(async () => {
    h = await startHarness();
    p = standardPki();
    const config: Config = {
      ...h.config,
      internalTls: internalTls(p, ['smpp-connector']),
    };
    const log = createLogger('silent');
    const operators = new OperatorService({ ...h.resources, config: config.temporal });
    const credentials = new CredentialsService({ db: h.resources.db, kv: h.resources.kv, log });
    const routing = {
      snapshots: new RoutingSnapshotService({ db: h.resources.db, nats: h.resources.nats, stream: config.nats.stream }),
      prefixTables: new PrefixTableService({ db: h.resources.db }),
    };
    const app = createInternalApp({ config, log, operators, credentials, routing });
    server = createInternalServer(app, config.internalTls, { log, reloadMs: 60_000 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await h.stop();
    p.pki.remove();
  });

  it('refuses a TLS session to a client without a certificate', async () => {
    const err = await get('/v1/internal/operators/00000000-0000-4000-8000-000000000000/config').then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    // A TLS refusal, not any failure (a JSON error would also reject).
    expect(`${err?.code} ${err?.message}`).toMatch(/CERTIFICATE_REQUIRED|ECONNRESET|socket hang up/);
  });

  it('answers 403 to a certificate from the CA whose identity is not allowed', async () => {
    const res = await get('/v1/internal/operators/00000000-0000-4000-8000-000000000000/config', p.stranger);
    expect(res.status).toBe(403);
    expect(res.body.title).toBe('Forbidden');
  });

  it("serves an allowed connector the operator's config with its version", async () => {
    const { id } = await onboardActive(h);
    const accepted = { operator: { id } };

    const res = await get(`/v1/internal/operators/${accepted.operator.id}/config`, p.allowed);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ version: 2, operator: { id: accepted.operator.id, status: 'ACTIVE' } });
    expect(res.body.routingRules).toEqual([expect.objectContaining({ prefixes: ['2547', '2541'], currency: 'EUR' })]);
    expect(JSON.stringify(res.body)).not.toContain('password');
  });

  it("serves the routing snapshot and a table's entries to allowed callers only", async () => {
    const table = (await (
      await h.api('/prefix-tables', { method: 'POST', json: { name: `internal ${Date.now()}` } })
    ).json()) as {
      id: string;
    };
    for (const urlPath of ['/v1/internal/routing/snapshot', `/v1/internal/prefix-tables/${table.id}/entries`]) {
      expect((await mtlsGet(port, urlPath, p.ca.cert, p.stranger)).status).toBe(403);
      expect((await mtlsGet(port, urlPath, p.ca.cert, p.allowed)).status).toBe(200);
    }
    const snapshot = await mtlsGet(port, '/v1/internal/routing/snapshot', p.ca.cert, p.allowed);
    const lines = snapshot.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string });
    expect(lines[0]).toMatchObject({ type: 'snapshot', streamSequence: expect.any(Number) });
    expect(lines.at(-1)).toMatchObject({ type: 'end' });
    const entries = await mtlsGet(port, `/v1/internal/prefix-tables/${table.id}/entries`, p.ca.cert, p.allowed);
    expect(JSON.parse(entries.text)).toEqual({
      prefixTableId: table.id,
      version: 1,
      contentHash: createHash('sha256').digest('hex'), // of no prefixes
      prefixes: [],
    });
  });

  it('mounts no admin route on the internal listener', async () => {
    for (const urlPath of ['/v1/admin/operators', '/v1/admin/openapi.json']) {
      const res = await get(urlPath, p.allowed);
      expect(res.status).toBe(404);
      expect(res.body.title).toBe('Not found');
    }
  });

  it('mounts no internal route on the admin listener', async () => {
    const origin = new URL(h.baseUrl).origin;
    const id = '00000000-0000-4000-8000-000000000000';
    for (const urlPath of [`/v1/internal/operators/${id}/config`, `/v1/internal/operators/${id}/credentials`]) {
      // Authenticated: without a token every path of the admin listener is a 401.
      const res = await fetch(`${origin}${urlPath}`, { headers: { authorization: `Bearer ${adminToken()}` } });
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
  });
});
