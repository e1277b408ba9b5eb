import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Server } from 'node:http';
import { createInternalApp, createInternalServer } from '../src/api/internal-app';
import type { Config } from '../src/config';
import { createLogger } from '../src/logger';
import { OperatorService } from '../src/services/operators';
import { connectorHealthSignal } from '../src/workflows/messages';
import { newOperatorRequest, startHarness, type Harness } from './support/harness';

/** The internal listener over real mTLS, with the dev certificates `npm run stack:up` makes. */

const certs = path.resolve(__dirname, '../.stack/certs');
const pem = (file: string) => readFileSync(path.join(certs, file));

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

function get(port: number, urlPath: string, client?: 'client' | 'stranger'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        ca: pem('ca.crt'),
        servername: 'localhost',
        ...(client ? { cert: pem(`${client}.crt`), key: pem(`${client}.key`) } : {}),
        agent: false,
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
        );
      },
    );
    req.on('error', reject);
  });
}

describe('internal API (mTLS)', () => {
  let h: Harness;
  let server: Server;
  let port: number;

  beforeAll(async () => {
    h = await startHarness();
    const config: Config = {
      ...h.config,
      internalTls: {
        enabled: true,
        certPath: path.join(certs, 'server.crt'),
        keyPath: path.join(certs, 'server.key'),
        caPath: path.join(certs, 'ca.crt'),
        allowedClients: ['smpp-connector'],
      },
    };
    const log = createLogger('silent');
    const operators = new OperatorService({ ...h.resources, config: config.temporal, log });
    server = createInternalServer(createInternalApp({ config, log, operators }), config.internalTls);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await h.stop();
  });

  it('refuses a TLS session to a client without a certificate', async () => {
    await expect(get(port, '/v1/internal/operators/00000000-0000-4000-8000-000000000000/config')).rejects.toThrow();
  });

  it('answers 403 to a certificate from the CA whose identity is not allowed', async () => {
    const res = await get(port, '/v1/internal/operators/00000000-0000-4000-8000-000000000000/config', 'stranger');
    expect(res.status).toBe(403);
    expect(res.body.title).toBe('Forbidden');
  });

  it("serves an allowed connector the operator's config with its version", async () => {
    const accepted = (await (await h.api('/operators', { method: 'POST', json: newOperatorRequest() })).json()) as {
      operator: { id: string };
      workflowId: string;
    };
    const handle = h.resources.temporal.workflow.getHandle(accepted.workflowId);
    await handle.signal(connectorHealthSignal, {
      status: 'UP',
      credentialsVersion: 1,
      inflight: 0,
      reportedAt: new Date().toISOString(),
    });
    await handle.result();

    const res = await get(port, `/v1/internal/operators/${accepted.operator.id}/config`, 'client');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ version: 2, operator: { id: accepted.operator.id, status: 'ACTIVE' } });
    expect(res.body.routingRules).toEqual([expect.objectContaining({ prefixes: ['2547', '2541'], currency: 'EUR' })]);
    expect(JSON.stringify(res.body)).not.toContain('password');
  });
});
