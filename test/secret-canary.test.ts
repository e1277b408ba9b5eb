import { randomUUID } from 'node:crypto';
import { credentialsPath } from '../src/domain/credentials';
import { workflowIds } from '../src/domain/workflow-ids';
import { loadConfig } from '../src/platform/config';
import { createLogger } from '../src/platform/logger';
import { openResources, type Resources } from '../src/platform/resources';
import { asConnector, standardPki, type StandardPki } from './support/certs';
import { EventWatcher } from './support/events';
import { isolatedDatabase, type IsolatedDatabase } from './support/isolated-db';
import { adminToken, newOperatorRequest } from './support/harness';
import { newPassword, waitForType } from './support/rotation';
import { dumpOpsSchema, dumpRedis, dumpStreams, historiesOf } from './support/secrets';
import { startServiceProcess, type ServiceProcess } from './support/service-process';
import { TcpProxy } from './support/tcp-proxy';

/**
 * The whole system with canary passwords: the service process as `npm start` runs it (every
 * role, logging at trace), a connector on the internal API over mTLS, and Vault and NATS behind
 * proxies the test cuts on the way. One password goes through onboarding, a PATCH, a rotation, a
 * rolled-back rotation and a drain; afterwards no canary is in any log line, PostgreSQL table,
 * Temporal history, NATS message, Redis key or HTTP answer, except the internal credentials
 * answers that exist to carry it. Nor are the service's own secrets, canaries as well: its JWT
 * key, the admin tokens signed with it and its Vault token.
 */

jest.setTimeout(180_000);

const CONNECTOR = 'canary-connector';
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

describe('a password through the whole system, outages included', () => {
  const started = new Date();
  let config = loadConfig();
  let db: IsolatedDatabase;
  let r: Resources;
  let vault: TcpProxy;
  let nats: TcpProxy;
  let pki: StandardPki;
  let service: ServiceProcess;
  let events: EventWatcher;
  /** The id the onboarding request carries, to be found in its workflow and activities. */
  const REQUEST_ID = `canary-request-${randomUUID()}`;
  let onboarded = '';
  /** Status, headers and body of every answer the test got, except the credentials reads. */
  const answers: string[] = [];
  /** The service's other secrets, canaries too: its HS256 key, the admin tokens signed with it, its Vault token. */
  const JWT_SECRET = `canary-jwt-${randomUUID()}-${randomUUID()}`;
  const bearerTokens: string[] = [];
  let vaultToken = '';

  beforeAll(async () => {
    // A database of its own: its relay, publishing through a proxy the test cuts, must not hold
    // back the events of the test files running beside it.
    db = await isolatedDatabase();
    config = { ...config, postgres: db.config };
    r = await openResources(config, createLogger('silent'));
    const vaultUrl = new URL(config.vault.addr);
    const natsUrl = new URL((config.nats.servers[0] ?? '').replace(/^nats:/, 'http:'));
    vault = await TcpProxy.start({ host: vaultUrl.hostname, port: Number(vaultUrl.port) });
    nats = await TcpProxy.start({ host: natsUrl.hostname, port: Number(natsUrl.port) });
    pki = standardPki();
    // A Vault token of the service's own (the stack's root token is in every test's config).
    if (config.vault.auth.kind !== 'token') throw new Error('the canary test needs VAULT_AUTH=token');
    const created = await fetch(`${config.vault.addr}/v1/auth/token/create`, {
      method: 'POST',
      headers: { 'X-Vault-Token': config.vault.auth.token },
      body: JSON.stringify({ policies: ['root'], ttl: '1h', renewable: true }),
    });
    expect(created.status).toBe(200);
    vaultToken = ((await created.json()) as { auth: { client_token: string } }).auth.client_token;
    service = await startServiceProcess({
      LOG_LEVEL: 'trace',
      JWT_SECRET,
      VAULT_TOKEN: vaultToken,
      DATABASE_URL: db.url,
      VAULT_ADDR: `http://127.0.0.1:${vault.port}`,
      NATS_URL: `nats://127.0.0.1:${nats.port}`,
      INTERNAL_TLS: 'true',
      INTERNAL_TLS_CERT: pki.server.certPath,
      INTERNAL_TLS_KEY: pki.server.keyPath,
      INTERNAL_TLS_CA: pki.ca.certPath,
      INTERNAL_ALLOWED_CLIENTS: 'smpp-connector',
    });
    await service.ready();
    events = await EventWatcher.start(r.nats, config.nats.stream);
  });
  afterAll(async () => {
    await service?.stop();
    if (vaultToken) {
      await fetch(`${config.vault.addr}/v1/auth/token/revoke-self`, {
        method: 'POST',
        headers: { 'X-Vault-Token': vaultToken },
      });
    }
    await events?.stop();
    await Promise.all([vault?.stop(), nats?.stop()]);
    pki?.pki.remove();
    await r?.close();
    await db?.drop();
  });

  function bearer(): string {
    const token = adminToken({}, JWT_SECRET);
    bearerTokens.push(token);
    return token;
  }

  async function admin(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
    const res = await fetch(`http://127.0.0.1:${service.ports.admin}/v1/admin${path}`, {
      ...init,
      body: init.json === undefined ? init.body : JSON.stringify(init.json),
      headers: {
        authorization: `Bearer ${bearer()}`,
        'content-type': 'application/json',
        ...(init.headers as Record<string, string>),
      },
    });
    const text = await res.text();
    answers.push(`${res.status}\n${JSON.stringify([...res.headers])}\n${text}`);
    return new Response(text, { status: res.status, headers: res.headers });
  }

  /**
   * Until the service has written every line of the requests before: its log goes out in batches
   * but in order, so once a marked request's line is out, all before it are.
   */
  async function allLinesOut(): Promise<void> {
    const marker = `canary-marker-${randomUUID()}`;
    await admin('/operators?limit=1', { headers: { 'X-Request-Id': marker } });
    for (const until = Date.now() + 10_000; !service.output().includes(marker); await sleep(20)) {
      if (Date.now() > until) throw new Error('the marked request was never logged');
    }
  }

  async function versionOf(id: string): Promise<number> {
    return ((await (await admin(`/operators/${id}`)).json()) as { version: number }).version;
  }

  /** The connector: its health report over mTLS (answers kept; a 503 while a dependency is out is fine). */
  async function report(id: string, fields: { status: string; credentialsVersion: number; inflight?: number }) {
    const res = await asConnector(service.ports.internal, pki)('POST', `/v1/internal/operators/${id}/health`, {
      operatorId: id,
      boundSessions: 1,
      inflight: 0,
      connectorInstance: CONNECTOR,
      reportedAt: new Date().toISOString(),
      ...fields,
    });
    answers.push(`${res.status}\n${JSON.stringify(res.headers)}\n${res.text}`);
    return res.status;
  }

  /** The connector's credentials read: the one answer allowed to carry the password. */
  async function credentials(id: string): Promise<{ status: number; password?: string }> {
    const res = await asConnector(service.ports.internal, pki)('GET', `/v1/internal/operators/${id}/credentials`);
    if (res.status !== 200) {
      answers.push(`${res.status}\n${JSON.stringify(res.headers)}\n${res.text}`);
      return { status: res.status };
    }
    return { status: 200, password: (JSON.parse(res.text) as { password: string }).password };
  }

  /**
   * Reads the credentials until they are `expected` (a workflow step may still be on its way),
   * failing without printing either password: test output is one of the places checked.
   */
  async function expectServed(id: string, expected: string, when: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    let last = { status: 0, matches: false };
    while (Date.now() < deadline) {
      const { status, password } = await credentials(id);
      last = { status, matches: password === expected };
      if (last.matches) return;
      await sleep(250);
    }
    throw new Error(`${when}: the credentials answer was ${last.status}, not the expected password`);
  }

  async function startRotation(id: string, password: string): Promise<void> {
    const res = await admin(`/operators/${id}/credentials/rotate`, { method: 'POST', json: { password } });
    expect(res.status).toBe(202);
  }

  /** Reports until the workflow closes, as a connector does; its result or failure. */
  async function reportUntilClosed(
    workflowId: string,
    id: string,
    fields: Parameters<typeof report>[1],
  ): Promise<'completed' | 'failed'> {
    const outcome = r.temporal.workflow
      .getHandle(workflowId)
      .result()
      .then(
        () => 'completed' as const,
        () => 'failed' as const,
      );
    let closed: 'completed' | 'failed' | undefined;
    void outcome.then((o) => (closed = o));
    const deadline = Date.now() + 90_000;
    while (!closed) {
      if (Date.now() > deadline) throw new Error(`${workflowId} never closed`);
      await report(id, fields);
      await new Promise((res) => setTimeout(res, 500));
    }
    return closed;
  }

  it('leaves the canaries in Vault and in the credentials answers only', async () => {
    const canary = newPassword('K');
    const rotated = newPassword('R');
    const rolledBack = newPassword('B');
    const canaries = [canary, rotated, rolledBack];
    const body = newOperatorRequest({ password: canary });

    // Onboarding while Vault is out: a 503 naming it, nothing left behind; then onboarding.
    await vault.cut();
    const refused = await admin('/operators', { method: 'POST', json: body });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { dependency: string }).dependency).toBe('Vault');
    await vault.restore();
    const accepted = await admin('/operators', {
      method: 'POST',
      json: body,
      headers: { 'X-Request-Id': REQUEST_ID },
    });
    expect(accepted.status).toBe(202);
    expect(accepted.headers.get('x-request-id')).toBe(REQUEST_ID);
    const { operator } = (await accepted.json()) as { operator: { id: string } };
    const id = operator.id;
    onboarded = id;
    await expectServed(id, canary, 'after onboarding');
    expect(await reportUntilClosed(workflowIds.onboarding(id), id, { status: 'UP', credentialsVersion: 1 })).toBe(
      'completed',
    );

    // A PATCH while NATS is out: committed at once, its event published once NATS is back.
    await nats.cut();
    const patched = await admin(`/operators/${id}`, {
      method: 'PATCH',
      json: { name: 'Canary carrier' },
      headers: { 'If-Match': `"${await versionOf(id)}"` },
    });
    expect(patched.status).toBe(200);
    await sleep(1500);
    await nats.restore();
    await waitForType(events, id, 'operator.config.updated');

    // A rotation whose Vault steps meet an outage: they retry until Vault is back.
    await startRotation(id, rotated);
    await vault.cut();
    await sleep(2000);
    await vault.restore();
    expect(await reportUntilClosed(workflowIds.rotation(id), id, { status: 'UP', credentialsVersion: 2 })).toBe(
      'completed',
    );
    await expectServed(id, rotated, 'after the rotation');

    // A rotation the carrier refuses (AUTH_FAILED), rolled back while NATS is out.
    await startRotation(id, rolledBack);
    // The workflow publishes its events before it closes: it waits for NATS, and loses nothing.
    await nats.cut();
    await report(id, { status: 'AUTH_FAILED', credentialsVersion: 3 });
    await sleep(2000);
    await nats.restore();
    expect(
      await reportUntilClosed(workflowIds.rotation(id), id, { status: 'AUTH_FAILED', credentialsVersion: 3 }),
    ).toBe('failed');
    await waitForType(events, id, 'operator.config.credentials_rolled_back');
    await expectServed(id, rotated, 'after the rollback');

    // The canaries did reach Vault: the search below looks for something that exists.
    const inVault = await Promise.all([1, 2, 3].map((v) => r.kv.read(credentialsPath(id), v)));
    expect(inVault.map((secret, i) => secret?.data.password === canaries[i])).toEqual([true, true, true]);

    // A drain that ends while Vault and NATS are both out.
    const drain = await admin(`/operators/${id}`, {
      method: 'DELETE',
      headers: { 'If-Match': `"${await versionOf(id)}"` },
    });
    expect(drain.status).toBe(202);
    await report(id, { status: 'UP', credentialsVersion: 2, inflight: 3 });
    await Promise.all([vault.cut(), nats.cut()]);
    const drained = r.temporal.workflow.getHandle(workflowIds.drain(id)).result();
    await sleep(1000);
    await report(id, { status: 'UP', credentialsVersion: 2, inflight: 0 });
    await sleep(2000);
    await Promise.all([vault.restore(), nats.restore()]);
    await reportUntilClosed(workflowIds.drain(id), id, { status: 'UP', credentialsVersion: 2, inflight: 0 });
    await drained;
    await waitForType(events, id, 'operator.config.deleted');
    expect((await admin(`/operators/${id}`)).status).toBe(404); // soft-deleted: gone from the API
    expect((await credentials(id)).status).toBe(404);

    await allLinesOut();
    const places: Record<string, string> = {
      logs: service.output(),
      postgres: await dumpOpsSchema(r.db),
      history: await historiesOf(r.temporal, [id]),
      nats: await dumpStreams(r.nats, started),
      redis: await dumpRedis(r.redis),
      answers: answers.join('\n'),
    };
    // Each place holds this operator's traces, so a miss below is not an empty search.
    // Booleans, not toContain: a failed toContain would print the whole dump, canaries and all.
    const holds = (text: string | undefined, what: string) => (text ?? '').includes(what);
    expect(
      Object.entries(places)
        .filter(([, text]) => !holds(text, id))
        .map(([place]) => place),
    ).toEqual([]);
    expect(holds(places.logs, `/v1/admin/operators/${id}/credentials/rotate`)).toBe(true);
    expect(holds(places.nats, 'operator.config.credentials_rolled_back')).toBe(true);
    for (const [place, text] of Object.entries(places)) {
      canaries.forEach((c, n) => {
        if (text.includes(c)) throw new Error(`canary ${n} found in ${place}`);
      });
    }
    // Nor the service's own secrets: its JWT key, a bearer token (or just its signature), its Vault token.
    const secrets: Record<string, string[]> = {
      'the JWT secret': [JWT_SECRET],
      'an admin bearer token': bearerTokens.flatMap((t) => [t, t.split('.')[2] ?? t]),
      'the Vault token': [vaultToken],
    };
    expect(bearerTokens.length).toBeGreaterThan(5);
    for (const [place, text] of Object.entries(places)) {
      for (const [what, values] of Object.entries(secrets)) {
        if (values.some((v) => text.includes(v))) throw new Error(`${what} found in ${place}`);
      }
    }
  });

  it('carried the onboarding request’s id into its workflow and its activities’ log lines', async () => {
    const lines = service
      .output()
      .split('\n')
      .filter((line) => line.includes(REQUEST_ID))
      .map((line) => JSON.parse(line) as { msg?: string; activityType?: string; requestId?: string });
    expect(lines.every((l) => l.requestId === REQUEST_ID)).toBe(true);
    expect(lines.some((l) => l.msg === 'request')).toBe(true);
    expect(lines.some((l) => l.activityType === 'saveOperator')).toBe(true);
    const { memo } = await r.temporal.workflow.getHandle(workflowIds.onboarding(onboarded)).describe();
    expect(memo).toEqual({ requestId: REQUEST_ID, startId: expect.any(String) });
  });

  it('logged every line as JSON, the Temporal SDK’s included', () => {
    const lines = service
      .output()
      .split('\n')
      .filter((line) => line.trim() !== '');
    const notJson = lines.filter((line) => {
      try {
        return typeof JSON.parse(line) !== 'object';
      } catch {
        return true;
      }
    });
    expect(notJson.length).toBe(0); // a count: the lines themselves may hold anything
    expect(lines.some((line) => line.includes('"component":"temporal"'))).toBe(true);
  });

  it('moved the series ops watch: workflows by type and outcome, activity failures, requests, credential reads, relay', async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${service.ports.ops}/metrics`)).text();
    const series = (name: string, labels: string) => new RegExp(`^${name}\\{[^}]*${labels}[^}]*\\} [1-9]`, 'm');
    expect(metrics).toMatch(series('temporal_workflow_completed_total', 'workflow_type="onboardOperator"'));
    expect(metrics).toMatch(series('temporal_workflow_completed_total', 'workflow_type="drainOperator"'));
    expect(metrics).toMatch(series('temporal_workflow_failed_total', 'workflow_type="rotateCredentials"'));
    expect(metrics).toMatch(/^workflows_started_total\{type="rotateCredentials",outcome="started"\} 2$/m);
    expect(metrics).toMatch(/^workflows_started_total\{type="drainOperator",outcome="started"\} 1$/m);
    expect(metrics).toMatch(series('activity_failures_total', 'retryable="true"'));
    expect(metrics).toMatch(series('http_requests_total', 'status="503"'));
    expect(metrics).toMatch(series('credential_reads_total', 'outcome="ok"'));
    expect(metrics).toMatch(/^outbox_commit_to_ack_seconds_count [1-9]/m);
  });
});
