import { randomUUID } from 'node:crypto';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { createInternalApp, createInternalServer } from '../src/api/internal-app';
import { createPool } from '../src/clients/postgres';
import { createKvStore, type KvStore } from '../src/clients/vault';
import type { Config } from '../src/platform/config';
import { credentialsPath } from '../src/domain/credentials';
import type { Logger } from '../src/platform/logger';
import { createMetricsRegistry } from '../src/platform/metrics';
import { CredentialsService } from '../src/services/credentials';
import { OperatorService } from '../src/services/operators';
import { connectorHealthSignal } from '../src/workflows/messages';
import { internalTls, mtlsGet, standardPki, type StandardPki, type TlsAnswer } from './support/certs';
import { EventWatcher } from './support/events';
import { newOperatorRequest, startHarness, type Harness } from './support/harness';
import { expectNoSecret, redisEntries } from './support/secrets';
import { report } from './support/rotation';

/**
 * GET /v1/internal/operators/{id}/credentials over real mTLS, against real PostgreSQL and
 * OpenBao: which version is served when, who is refused, the audit line of every read, and the
 * canary passwords that must surface nowhere but in the 200 bodies.
 */

const ALLOWED = 'smpp-connector';
const DEV_TOKEN = 'dev-root-token';

/** Logs of the internal app, unredacted on purpose: a secret logged by mistake shows here. */
function bufferLogger(lines: string[]): Logger {
  return pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    }),
  );
}

const canary = () => `C${randomUUID().replace(/-/g, '').slice(0, 7)}`;

interface Listener {
  port: number;
  close(): Promise<void>;
}

describe('internal credentials API', () => {
  let h: Harness;
  let p: StandardPki;
  let config: Config;
  let internal: Listener;
  let events: EventWatcher;
  const logs: string[] = [];
  /** Every password a test wrote: none may appear outside a 200 credentials body. */
  const canaries: string[] = [];
  /** Bodies of every non-200 answer. */
  const errorBodies: string[] = [];
  const operatorIds: string[] = [];
  const registry = createMetricsRegistry();
  /** credential_reads_total for one outcome, whoever the caller. */
  const readsOf = async (outcome: string) => {
    const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'credential_reads_total');
    const values = (metric?.values ?? []) as Array<{ labels: Record<string, string>; value: number }>;
    return values.filter((v) => v.labels.outcome === outcome).reduce((sum, v) => sum + v.value, 0);
  };

  async function listen(credentials: CredentialsService, log: Logger): Promise<Listener> {
    const operators = new OperatorService({ ...h.resources, config: config.temporal });
    const app = createInternalApp({ config, log, operators, credentials, registry });
    const server: Server = createInternalServer(app, config.internalTls, { log, reloadMs: 60_000 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      port: (server.address() as AddressInfo).port,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
  }

  async function read(id: string, query = '', on: Listener = internal, client = p.allowed): Promise<TlsAnswer> {
    const res = await mtlsGet(on.port, `/v1/internal/operators/${id}/credentials${query}`, p.ca.cert, client);
    if (res.status !== 200) errorBodies.push(res.text);
    return res;
  }
  const json = (res: TlsAnswer) => JSON.parse(res.text) as Record<string, unknown>;

  beforeAll(async () => {
    h = await startHarness();
    p = standardPki();
    config = {
      ...h.config,
      internalTls: internalTls(p, [ALLOWED]),
    };
    const log = bufferLogger(logs);
    internal = await listen(new CredentialsService({ db: h.resources.db, kv: h.resources.kv, log }), log);
    events = await EventWatcher.start(h.resources.nats, h.config.nats.stream);
  });

  afterAll(async () => {
    await Promise.all(operatorIds.map((id) => h.resources.kv.destroy(credentialsPath(id))));
    await events.stop();
    await internal.close();
    await h.stop();
    p.pki.remove();
  });

  /** Onboards through the API; resolves once Vault holds version 1 (still ONBOARDING). */
  async function onboard(): Promise<{ id: string; workflowId: string; systemId: string; password: string }> {
    const body = newOperatorRequest({ password: canary() });
    canaries.push(body.password);
    const res = await h.api('/operators', { method: 'POST', json: body });
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as { operator: { id: string }; workflowId: string };
    const id = accepted.operator.id;
    operatorIds.push(id);
    for (let i = 0; i < 100; i++) {
      const { rows } = await h.resources.db.query<{ v: number | null }>(
        'SELECT credentials_version AS v FROM ops.operators WHERE id = $1',
        [id],
      );
      if (rows[0]?.v) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return { id, workflowId: accepted.workflowId, systemId: body.systemId as string, password: body.password };
  }

  async function activate(workflowId: string): Promise<void> {
    const handle = h.resources.temporal.workflow.getHandle(workflowId);
    await handle.signal(connectorHealthSignal, report('UP', 1));
    await handle.result();
  }

  /** A row written directly, for states this file does not drive through workflows. */
  async function operatorRow(
    status: string,
    credentialsVersion: number | null,
    deleted = false,
  ): Promise<{ id: string; password: string }> {
    const id = randomUUID();
    const password = canary();
    canaries.push(password);
    operatorIds.push(id);
    await h.resources.db.query(
      `INSERT INTO ops.operators (id, name, host, port, system_id, bind_type, window_size, enquire_link_interval_s,
                                  status, version, credentials_version, created_by, updated_by, deleted_at)
       VALUES ($1, 'row', $2, 2775, 'acct', 'transceiver', 10, 30, $3, 1, $4, 'test', 'test',
               CASE WHEN $5 THEN now() END)`,
      [id, `h-${id}.example.net`, status, credentialsVersion, deleted],
    );
    // The secret exists: only the status rules may keep it from being served.
    await h.resources.kv.write(credentialsPath(id), { system_id: 'acct', password });
    return { id, password };
  }

  it('serves the current version as soon as onboarding stored it, and after activation', async () => {
    const op = await onboard();
    const status = await h.api(`/operators/${op.id}`);
    expect(((await status.json()) as { status: string }).status).toBe('ONBOARDING');

    const first = await read(op.id);
    expect(first.status).toBe(200);
    expect(first.headers['cache-control']).toBe('no-store');
    expect(json(first)).toEqual({
      operatorId: op.id,
      systemId: op.systemId,
      password: op.password,
      credentialsVersion: 1,
    });

    await activate(op.workflowId);
    const active = await read(op.id, '?version=current');
    expect(active.status).toBe(200);
    expect(json(active)).toMatchObject({ password: op.password, credentialsVersion: 1 });
  });

  it('keeps answering the current version during a rotation and the pending one only on request', async () => {
    const op = await onboard();
    await activate(op.workflowId);

    const none = await read(op.id, '?version=pending');
    expect(none.status).toBe(404);
    expect(none.headers['content-type']).toContain('application/problem+json');
    expect(none.headers['cache-control']).toBe('no-store');
    expect(json(none).detail).toMatch(/no credential rotation is pending/i);

    // What the rotation workflow does: a new Vault version (check-and-set), then the pending mark.
    const next = canary();
    canaries.push(next);
    expect(await h.resources.kv.write(credentialsPath(op.id), { system_id: op.systemId, password: next }, 1)).toBe(2);
    await h.resources.db.query('UPDATE ops.operators SET pending_credentials_version = 2 WHERE id = $1', [op.id]);

    for (const query of ['', '?version=current']) {
      const current = await read(op.id, query);
      expect(current.status).toBe(200);
      expect(json(current)).toMatchObject({ password: op.password, credentialsVersion: 1 });
    }
    const pending = await read(op.id, '?version=pending');
    expect(pending.status).toBe(200);
    expect(pending.headers['cache-control']).toBe('no-store');
    expect(json(pending)).toEqual({ operatorId: op.id, systemId: op.systemId, password: next, credentialsVersion: 2 });

    // Completion: the new version becomes current, nothing is pending.
    await h.resources.db.query(
      'UPDATE ops.operators SET credentials_version = 2, pending_credentials_version = NULL WHERE id = $1',
      [op.id],
    );
    expect(json(await read(op.id))).toMatchObject({ password: next, credentialsVersion: 2 });
    expect((await read(op.id, '?version=pending')).status).toBe(404);
  });

  it.each([
    ['unknown', async () => ({ id: randomUUID() })],
    ['soft-deleted', () => operatorRow('ACTIVE', 1, true)],
    ['DELETED', () => operatorRow('DELETED', 1)],
    ['ONBOARDING_FAILED', () => operatorRow('ONBOARDING_FAILED', 1)],
    ['without a credentials version yet', () => operatorRow('ONBOARDING', null)],
  ])('answers 404 for an operator that is %s', async (_what, make) => {
    const { id } = await make();
    for (const query of ['', '?version=pending']) {
      const res = await read(id, query);
      expect(res.status).toBe(404);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(json(res)).toMatchObject({ status: 404, title: 'Not found' });
    }
  });

  it('serves a DRAINING operator (its connector still works off in-flight messages)', async () => {
    const { id, password } = await operatorRow('DRAINING', 1);
    expect(json(await read(id))).toMatchObject({ password, credentialsVersion: 1 });
  });

  it('names the bad parameter: 400 for any other version value or a bad id', async () => {
    const id = randomUUID();
    for (const query of ['?version=latest', '?version=1', '?version=pending&version=current']) {
      const res = await read(id, query);
      expect(res.status).toBe(400);
      expect(json(res).errors).toEqual([expect.objectContaining({ field: 'version' })]);
    }
    const badId = await read('not-a-uuid');
    expect(badId.status).toBe(400);
    expect(json(badId).errors).toEqual([expect.objectContaining({ field: 'id' })]);
  });

  it('counts each read by caller and outcome', async () => {
    const [ok, missing] = [await readsOf('ok'), await readsOf('not_found')];
    expect((await read(operatorIds[0] ?? '')).status).toBe(200);
    expect((await read(randomUUID())).status).toBe(404);
    expect(await readsOf('ok')).toBe(ok + 1);
    expect(await readsOf('not_found')).toBe(missing + 1);
    const text = await registry.metrics();
    expect(text).toMatch(/credential_reads_total\{caller="[^"]+",outcome="ok"\}/);
    expect(text).not.toContain('caller="unauthenticated"');
  });

  it('refuses a certificate not on the allowlist with 403 and serves it nothing', async () => {
    const { id } = await operatorRow('ACTIVE', 1);
    const res = await read(id, '', internal, p.stranger);
    expect(res.status).toBe(403);
    expect(res.headers['cache-control']).toBeUndefined();
    // Without a client certificate: a TLS refusal, not any failure (a JSON error would also reject).
    const err = await mtlsGet(internal.port, `/v1/internal/operators/${id}/credentials`, p.ca.cert).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(`${err?.code} ${err?.message}`).toMatch(/CERTIFICATE_REQUIRED|ECONNRESET|socket hang up/);
  });

  it('audit-logs every read with the caller, operator, version and outcome, never the secret', async () => {
    const { id } = await operatorRow('ACTIVE', 1);
    const before = logs.length;
    await read(id);
    await read(id, '?version=pending');
    await read(randomUUID());
    const audits = logs
      .slice(before)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.audit === 'credentials.read');
    expect(audits).toEqual([
      expect.objectContaining({
        caller: ALLOWED,
        operatorId: id,
        which: 'current',
        credentialsVersion: 1,
        outcome: 'served',
        level: 30,
      }),
      expect.objectContaining({
        caller: ALLOWED,
        operatorId: id,
        which: 'pending',
        credentialsVersion: null,
        outcome: 'no_pending',
      }),
      expect.objectContaining({ caller: ALLOWED, which: 'current', outcome: 'not_found' }),
    ]);
    for (const line of audits) expect(typeof line.time).toBe('number');
  });

  describe('when Vault or PostgreSQL fails', () => {
    const failureLogs: string[] = [];
    let hung: NetServer;
    const sockets: Socket[] = [];

    beforeAll(async () => {
      hung = createServer((s) => sockets.push(s)); // accepts, never answers
      await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    });
    afterAll(async () => {
      sockets.forEach((s) => s.destroy());
      await new Promise((resolve) => hung.close(resolve));
    });

    async function through(kv: KvStore): Promise<TlsAnswer & { ms: number }> {
      const log = bufferLogger(failureLogs);
      const listener = await listen(new CredentialsService({ db: h.resources.db, kv, log }), log);
      try {
        const op = await operatorRow('ACTIVE', 1);
        const started = Date.now();
        const res = await read(op.id, '', listener);
        return { ...res, ms: Date.now() - started };
      } finally {
        await listener.close();
      }
    }

    it('answers 503 when Vault is unreachable, with neither password nor token in body or logs', async () => {
      const kv = await createKvStore({ ...h.config.vault, addr: 'http://127.0.0.1:1' });
      const res = await through(kv);
      kv.close();
      expect(res.status).toBe(503);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(json(res)).toMatchObject({
        status: 503,
        detail: expect.stringMatching(/credentials store is unavailable/),
      });
      expect(failureLogs.join('')).toContain('Vault unreachable (ECONNREFUSED)');
      for (const text of [res.text, failureLogs.join('')]) {
        expectNoSecret(text, DEV_TOKEN);
        for (const secret of canaries) expectNoSecret(text, secret);
      }
    });

    it('answers 503 naming PostgreSQL when it is unreachable, counted as unavailable', async () => {
      const log = bufferLogger(failureLogs);
      const db = createPool({ ...h.config.postgres, url: 'postgres://ops@127.0.0.1:1/ops', connectTimeoutMs: 500 });
      const listener = await listen(new CredentialsService({ db, kv: h.resources.kv, log }), log);
      try {
        const unavailable = await readsOf('unavailable');
        const res = await read(randomUUID(), '', listener);
        expect(res.status).toBe(503);
        expect(json(res)).toMatchObject({ status: 503, dependency: 'PostgreSQL' });
        expect(await readsOf('unavailable')).toBe(unavailable + 1);
      } finally {
        await listener.close();
        await db.end();
      }
    });

    it('answers 503 within the request timeout when Vault accepts but never answers', async () => {
      const port = (hung.address() as AddressInfo).port;
      const kv = await createKvStore({ ...h.config.vault, addr: `http://127.0.0.1:${port}`, requestTimeoutMs: 300 });
      const res = await through(kv);
      kv.close();
      expect(res.status).toBe(503);
      expect(res.ms).toBeLessThan(5000);
      expect(failureLogs.join('')).toContain('no answer within 300 ms');
      expectNoSecret(failureLogs.join(''), DEV_TOKEN);
    });
  });

  it('canary: no password in logs, PostgreSQL, events, Redis or error bodies', async () => {
    expect(canaries.length).toBeGreaterThan(5);
    const leaks: string[] = [];
    const check = (where: string, text: string) => {
      for (const secret of canaries) if (text.includes(secret)) leaks.push(where);
    };

    check('internal app logs', logs.join(''));
    check('error bodies', errorBodies.join(''));

    const { rows: tables } = await h.resources.db.query<{ name: string }>(
      `SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables WHERE schemaname = 'ops'`,
    );
    expect(tables.length).toBeGreaterThan(3);
    for (const { name } of tables) {
      const { rows } = await h.resources.db.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM ${name} t`);
      check(`PostgreSQL ${name}`, rows.map((r) => r.row).join('\n'));
    }

    // The events of this file's onboardings made it out (so the check below has material).
    await events.waitFor(operatorIds[0] ?? '', (evs) => evs.some((e) => e.type === 'operator.config.activated'));
    check('events', JSON.stringify(operatorIds.map((id) => events.of(id))));

    for (const { key, value } of await redisEntries(h.resources.redis)) check(`Redis ${key}`, `${key} ${value}`);

    expect(leaks).toEqual([]);
  });
});
