import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import jwt from 'jsonwebtoken';
import { commitChange, findOperator } from '../src/db/operators';
import { replaceTpsLimit } from '../src/db/tps-limits';
import { EventWatcher } from './support/events';
import { expectInvalid, expectProblem } from './support/problems';
import { adminToken, newOperatorRequest, startHarness, type Harness } from './support/harness';
import { backendPid, waitUntilBlockedBy } from './support/pg-locks';
import { expectNoSecret } from './support/secrets';

/**
 * The admin REST API against the real stack (openapi/admin.json): authentication, field-level
 * validation that writes nothing, listing with cursors, PATCH with If-Match, workflow runs.
 * Operators created here stay ONBOARDING (their workflows wait for a bind); afterAll cancels
 * those workflows so they compensate instead of lingering.
 */

interface Operator {
  id: string;
  name: string;
  host: string;
  port: number;
  systemId: string;
  status: string;
  version: number;
  updatedBy: string;
}
interface Accepted {
  operator: Operator;
  workflowId: string;
}
interface Page {
  items: Operator[];
  nextCursor: string | null;
}
interface WorkflowRunBody {
  workflowId: string;
  runId: string;
  type: string;
  status: string;
  url: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('admin API', () => {
  let h: Harness;
  let events: EventWatcher;
  let secret: string;
  const started: string[] = [];

  beforeAll(async () => {
    h = await startHarness({ bindTimeoutS: 600 });
    events = await EventWatcher.start(h.resources.nats, h.config.nats.stream);
    secret = h.config.jwt.secret ?? '';
    expect(secret).not.toBe('');
  });

  afterAll(async () => {
    // Cancelled onboardings compensate (staged secret discarded, ONBOARDING_FAILED).
    await Promise.allSettled(
      started.map(async (workflowId) => {
        const handle = h.resources.temporal.workflow.getHandle(workflowId);
        await handle.cancel();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([handle.result(), new Promise((r) => (timer = setTimeout(r, 10_000)))]).finally(() =>
          clearTimeout(timer),
        );
      }),
    );
    await events?.stop();
    await h?.stop();
  }, 60_000);

  async function onboard(overrides: Record<string, unknown> = {}): Promise<Accepted> {
    const res = await h.api('/operators', { method: 'POST', json: newOperatorRequest(overrides) });
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as Accepted;
    started.push(accepted.workflowId);
    return accepted;
  }

  /** Onboarded and announced: version 1, so a PATCH does not race the workflow's `created`. */
  async function announcedOperator(
    overrides: Record<string, unknown> = {},
  ): Promise<{ operator: Operator; etag: string }> {
    const { operator } = await onboard(overrides);
    await events.waitFor(operator.id, (e) => e.some((x) => x.type === 'operator.config.created'));
    const res = await h.api(`/operators/${operator.id}`);
    expect(res.status).toBe(200);
    const current = (await res.json()) as Operator;
    expect(current.version).toBe(1);
    return { operator: current, etag: res.headers.get('etag') ?? '' };
  }

  const rowsWithHost = async (host: unknown) =>
    (await h.resources.db.query('SELECT id FROM ops.operators WHERE host = $1', [host])).rowCount;

  describe('methods a path does not have', () => {
    /** node:http, since fetch refuses to send TRACE. */
    const send = (method: string, urlPath: string) =>
      new Promise<{ status: number; allow?: string; type?: string; body: string }>((resolve, reject) => {
        const req = http.request(`${h.baseUrl}${urlPath}`, {
          method,
          headers: { authorization: `Bearer ${adminToken()}` },
        });
        req.on('response', (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, allow: res.headers.allow, type: res.headers['content-type'], body }),
          );
        });
        req.on('error', reject);
        req.end();
      });

    it.each([
      ['TRACE', '/operators'],
      ['DELETE', '/routing/lint'],
      ['PUT', '/operators'],
    ])('answers %s %s with a 405 problem and Allow', async (method, urlPath) => {
      const res = await send(method, urlPath);
      expect(res.status).toBe(405);
      expect(res.type).toContain('application/problem+json');
      expect(res.allow).toMatch(/GET/);
      expect(JSON.parse(res.body)).toMatchObject({ status: 405, title: 'Method not allowed' });
    });
  });

  describe('authentication', () => {
    it('refuses a request without a token with 401 and WWW-Authenticate', async () => {
      const res = await fetch(`${h.baseUrl}/operators`);
      const { body } = await expectProblem(res, 401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(body.detail).toMatch(/token/i);
    });

    it('checks the token before it reads a body', async () => {
      // Malformed, and twice the 1 MiB limit: a parser that ran would answer 400 or 413.
      for (const body of ['{"not json', `{"name":"${'x'.repeat(2 * 1024 * 1024)}"}`]) {
        const res = await fetch(`${h.baseUrl}/operators`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        await expectProblem(res, 401);
      }
    });

    it('refuses a token signed with another secret', async () => {
      const res = await h.api('/operators', { headers: bearer(adminToken({}, 'not-the-service-secret')) });
      await expectProblem(res, 401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    });

    it('refuses an expired token and says so', async () => {
      const expired = jwt.sign({ sub: 'test-admin', scope: 'admin', exp: Math.floor(Date.now() / 1000) - 10 }, secret);
      const res = await h.api('/operators', { headers: bearer(expired) });
      const { body } = await expectProblem(res, 401);
      expect(body.detail).toMatch(/expired/i);
    });

    it('answers 403 to a valid token without the admin scope', async () => {
      const res = await h.api('/operators', { headers: bearer(adminToken({ scope: 'read' })) });
      const { body } = await expectProblem(res, 403);
      expect(body.detail).toMatch(/admin/);
      // A refused token must not reach a handler: nothing is written either.
      const body2 = newOperatorRequest();
      const post = await h.api('/operators', {
        method: 'POST',
        json: body2,
        headers: bearer(adminToken({ scope: 'read' })),
      });
      expect(post.status).toBe(403);
      expect(await rowsWithHost(body2.host)).toBe(0);
    });

    it('accepts the admin scope given as an `scp` array', async () => {
      const token = jwt.sign({ sub: 'test-admin', scp: ['read', 'admin'] }, secret, { expiresIn: '5m' });
      const res = await h.api('/operators', { headers: bearer(token) });
      expect(res.status).toBe(200);
      expect((await res.json()) as Page).toMatchObject({ items: expect.any(Array) });
    });
  });

  describe('validation of POST /operators', () => {
    /** POSTs the body, expects a 400 naming `fields`, and checks nothing was written. */
    async function refused(body: Record<string, unknown>, fields: string[], status: 400 | 422 = 400) {
      const res = await h.api('/operators', { method: 'POST', json: body });
      const problem = await expectInvalid(res, fields, status);
      expect(await rowsWithHost(body.host)).toBe(0);
      return problem;
    }

    it('refuses status, version and createdBy as unknown fields', async () => {
      const { body } = await refused({ ...newOperatorRequest(), status: 'ACTIVE', version: 7, createdBy: 'mallory' }, [
        'status',
        'version',
        'createdBy',
      ]);
      for (const field of ['status', 'version', 'createdBy']) {
        expect(body.errors).toContainEqual({ field, message: 'unknown field' });
      }
    });

    it('refuses a port above 65535', async () => {
      await refused(newOperatorRequest({ port: 70000 }), ['port']);
    });

    it('refuses a systemId longer than 15 characters', async () => {
      await refused(newOperatorRequest({ systemId: 'a'.repeat(16) }), ['systemId']);
    });

    it('refuses a password longer than 8 characters without echoing it', async () => {
      const password = `p${randomUUID().replace(/-/g, '').slice(0, 8)}`;
      expect(password).toHaveLength(9);
      const { text } = await refused(newOperatorRequest({ password }), ['password']);
      expectNoSecret(text, password);
    });

    const rule = { priority: 1, weight: 100, costPerSegment: '0.0125', currency: 'EUR' };

    it('refuses a routing rule with both a prefix table and inline prefixes', async () => {
      await refused(
        newOperatorRequest({ routingRules: [{ ...rule, prefixTableId: randomUUID(), prefixes: ['254'] }] }),
        ['routingRules[0].prefixes'],
      );
    });

    it('refuses a prefix that is not E.164 digits', async () => {
      await refused(newOperatorRequest({ routingRules: [{ ...rule, prefixes: ['25-4'] }] }), [
        'routingRules[0].prefixes[0]',
      ]);
    });

    it('refuses a currency that is not an ISO 4217 code', async () => {
      await refused(newOperatorRequest({ routingRules: [{ ...rule, prefixes: ['254'], currency: 'eur' }] }), [
        'routingRules[0].currency',
      ]);
    });

    it('refuses a routing rule naming a prefix table that does not exist with a 422', async () => {
      const { body } = await refused(
        newOperatorRequest({ routingRules: [{ ...rule, prefixTableId: randomUUID() }] }),
        ['routingRules[0].prefixTableId'],
        422,
      );
      expect(body.errors).toHaveLength(1);
    });

    // The body parser's message quotes the body (here the password): never in the answer.
    it('answers malformed JSON with a 400 problem that does not quote the body', async () => {
      const password = 'pw0rd1x';
      const res = await h.api('/operators', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: `{"name": "half a body", "password": ${password}}`,
      });
      const { text } = await expectProblem(res, 400);
      expectNoSecret(text, password);
    });

    it('answers a body past 1 MiB with a 413 content-too-large problem', async () => {
      const name = `too large ${'x'.repeat(1024 * 1024)}`;
      const res = await h.api('/operators', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name }),
      });
      const { body } = await expectProblem(res, 413);
      expect(body).toMatchObject({ type: expect.stringMatching(/content-too-large$/), title: 'Content too large' });
    });

    it('reads a body only for a route that exists: past 1 MiB to a wrong path is a 404, with a wrong method a 405', async () => {
      const body = JSON.stringify({ name: `too large ${'x'.repeat(1024 * 1024)}` });
      const headers = { 'content-type': 'application/json' };
      const missing = await expectProblem(await h.api('/no-such-thing', { method: 'POST', headers, body }), 404);
      expect(missing.body.title).toBe('Not found');
      const wrongMethod = await expectProblem(
        await h.api(`/operators/${randomUUID()}`, { method: 'POST', headers, body }),
        405,
      );
      expect(wrongMethod.body.title).toBe('Method not allowed');
    });

    it('reads a body only as application/json, the one type its OpenAPI document offers', async () => {
      const res = await h.api('/operators', {
        method: 'POST',
        headers: { 'content-type': 'application/vnd.api+json' },
        body: JSON.stringify(newOperatorRequest()),
      });
      const { body } = await expectProblem(res, 400);
      expect(body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'name' })]));
    });

    it('answers a Content-Encoding it cannot decode with a 415 problem, not a 500', async () => {
      const res = await h.api('/operators', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'bogus' },
        body: '{}',
      });
      const { body } = await expectProblem(res, 415);
      expect(body).toMatchObject({
        title: 'Unsupported media type',
        detail: expect.stringMatching(/Content-Encoding/),
      });
    });

    it('reads a compressed body whatever the case of its Content-Encoding, as the prefix import does', async () => {
      // An empty draft: read and validated (a 400 naming fields), not refused as an unknown coding.
      for (const encoding of ['gzip', 'GZIP', ' Br ']) {
        const body = encoding.trim().toLowerCase() === 'br' ? brotliCompressSync('{}') : gzipSync('{}');
        const res = await h.api('/operators', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-encoding': encoding },
          body,
        });
        const problem = await expectProblem(res, 400);
        expect(problem.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'name' })]));
      }
    });

    it('answers a body that is not what its Content-Encoding says (gzip, brotli), or gzip cut short, with a 400 problem, not a 500', async () => {
      const cutShort = gzipSync(JSON.stringify({ name: 'cut short' })).subarray(0, -8);
      const garbled = Buffer.from(brotliCompressSync(JSON.stringify({ name: 'garbled '.repeat(100) })));
      for (let i = 5; i < garbled.length - 3; i++) garbled[i] = (garbled[i] ?? 0) ^ 0x5a;
      for (const [encoding, body] of [
        ['gzip', Buffer.from('{"name": "not gzip at all"}')],
        ['gzip', cutShort],
        ['br', garbled],
      ] as const) {
        const res = await h.api('/operators', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-encoding': encoding },
          body,
        });
        const problem = await expectProblem(res, 400);
        expect(problem.body.detail).toMatch(/could not be (decoded|read whole)/);
      }
    });
  });

  describe('GET /operators/{id}', () => {
    it('refuses an id that is not a uuid, naming it', async () => {
      await expectInvalid(await h.api('/operators/not-a-uuid'), ['id']);
    });

    it('answers 404 for an operator that does not exist', async () => {
      const id = randomUUID();
      const { body } = await expectProblem(await h.api(`/operators/${id}`), 404);
      expect(body.detail).toContain(id);
    });
  });

  describe('GET /operators', () => {
    // BUG (src/db/operators.ts): the cursor keeps created_at in milliseconds (a JS Date) while the
    // column holds microseconds, so `(created_at, id) > cursor` returns each page's last row again.
    it('pages through operators by status with cursors, each exactly once', async () => {
      const created: string[] = [];
      for (let i = 0; i < 3; i++) created.push((await onboard()).operator.id);

      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query = new URLSearchParams({ status: 'ONBOARDING', limit: '2', ...(cursor ? { cursor } : {}) });
        const res = await h.api(`/operators?${query.toString()}`);
        expect(res.status).toBe(200);
        const page = (await res.json()) as Page;
        expect(page.items.length).toBeLessThanOrEqual(2);
        for (const op of page.items) expect(op.status).toBe('ONBOARDING');
        seen.push(...page.items.map((op) => op.id));
        cursor = page.nextCursor;
        pages++;
      } while (cursor !== null && pages < 100);
      expect(cursor).toBeNull();

      for (const id of created) {
        expect(seen.filter((s) => s === id)).toHaveLength(1);
      }
      // No operator at all appears twice across pages.
      expect(new Set(seen).size).toBe(seen.length);
    });

    it('refuses a limit above the configured cap, naming limit', async () => {
      const max = h.config.http.pageSizeMax;
      expect((await h.api(`/operators?limit=${max}`)).status).toBe(200);
      await expectInvalid(await h.api(`/operators?limit=${max + 1}`), ['limit']);
    });

    it('refuses a cursor it did not hand out, naming cursor', async () => {
      await expectInvalid(await h.api('/operators?cursor=bm90LWEtY3Vyc29y'), ['cursor']);
    });

    it('refuses an unknown status, naming status', async () => {
      await expectInvalid(await h.api('/operators?status=NOPE'), ['status']);
    });
  });

  describe('PATCH /operators/{id}', () => {
    const updatedEvents = (id: string) => events.of(id).filter((e) => e.type === 'operator.config.updated');

    it('changes metadata under If-Match, bumps the version, records the actor and publishes updated', async () => {
      const { operator, etag } = await announcedOperator();
      expect(etag).toBe(`"${operator.version}"`);

      const res = await h.api(`/operators/${operator.id}`, {
        method: 'PATCH',
        json: { name: 'Renamed carrier', windowSize: 20 },
        headers: { ...bearer(adminToken({ sub: 'patcher' })), 'If-Match': etag },
      });
      expect(res.status).toBe(200);
      const patched = (await res.json()) as Operator & { windowSize: number };
      expect(patched).toMatchObject({
        id: operator.id,
        name: 'Renamed carrier',
        windowSize: 20,
        version: operator.version + 1,
        updatedBy: 'patcher',
      });
      expect(res.headers.get('etag')).toBe(`"${operator.version + 1}"`);

      const published = await events.waitFor(operator.id, (e) => e.some((x) => x.type === 'operator.config.updated'));
      const updated = published.filter((e) => e.type === 'operator.config.updated');
      expect(updated).toHaveLength(1);
      expect(updated[0]).toMatchObject({ version: operator.version + 1, actor: 'patcher', operatorId: operator.id });

      // A stale If-Match (the ETag before the change) changes nothing.
      const stale = await h.api(`/operators/${operator.id}`, {
        method: 'PATCH',
        json: { name: 'Lost update' },
        headers: { 'If-Match': etag },
      });
      await expectProblem(stale, 412);
      // RFC 9110: any tag that is not the current version is a 412, a weak one too; a list
      // matches when one member does; a header that is no list of tags is a 400.
      const current = `"${operator.version + 1}"`;
      for (const [ifMatch, status] of [
        ['"v1"', 412],
        [`W/${current}`, 412],
        ['not-an-etag', 400],
      ] as const) {
        const res = await h.api(`/operators/${operator.id}`, {
          method: 'PATCH',
          json: { name: 'Lost update' },
          headers: { 'If-Match': ifMatch },
        });
        await expectProblem(res, status);
      }
      const listed = await h.api(`/operators/${operator.id}`, {
        method: 'PATCH',
        json: { name: 'Listed carrier' },
        headers: { 'If-Match': `"1", ${current}` },
      });
      expect(listed.status).toBe(200);
      const after = await h.api(`/operators/${operator.id}`);
      expect((await after.json()) as Operator).toMatchObject({
        name: 'Listed carrier',
        version: operator.version + 2,
      });
      expect(after.headers.get('etag')).toBe(`"${operator.version + 2}"`);
      // Every event leaves through the outbox: the refused PATCHes wrote none there.
      const outbox = await h.resources.db.query(
        `SELECT 1 FROM ops.event_outbox WHERE operator_id = $1 AND subject = 'operator.config.updated'`,
        [operator.id],
      );
      expect(outbox.rowCount).toBe(2);
      // The listed PATCH's event, and no other: the refused ones published nothing.
      await events.waitFor(operator.id, () => updatedEvents(operator.id).length >= 2);
      expect(updatedEvents(operator.id)).toHaveLength(2);
    });

    it('refuses unknown fields, systemId, status and an empty body, changing nothing', async () => {
      const { operator, etag } = await announcedOperator();
      const cases: [Record<string, unknown>, string][] = [
        [{ name: 'x', colour: 'blue' }, 'colour'],
        [{ systemId: 'other' }, 'systemId'],
        [{ status: 'ACTIVE' }, 'status'],
        [{ version: 9 }, 'version'],
      ];
      for (const [json, field] of cases) {
        const res = await h.api(`/operators/${operator.id}`, { method: 'PATCH', json, headers: { 'If-Match': etag } });
        const { body } = await expectInvalid(res, [field]);
        expect(body.errors).toContainEqual({ field, message: 'unknown field' });
      }
      await expectProblem(
        await h.api(`/operators/${operator.id}`, { method: 'PATCH', json: {}, headers: { 'If-Match': etag } }),
        400,
      );

      const after = (await (await h.api(`/operators/${operator.id}`)).json()) as Operator;
      expect(after).toMatchObject({
        name: operator.name,
        systemId: operator.systemId,
        status: 'ONBOARDING',
        version: operator.version,
      });
      expect(updatedEvents(operator.id)).toHaveLength(0);
    });

    it('answers and announces the operator as it is after waiting for a concurrent change of its TPS limit', async () => {
      const { operator } = await announcedOperator();
      const limit = { tpsCap: 321, burstWindowMs: 2000, enforcementMode: 'shape' as const };
      // A TPS change holds the row's lock while the PATCH arrives; it commits once the PATCH waits.
      const tx = await h.resources.db.connect();
      try {
        await tx.query('BEGIN');
        const current = await findOperator(tx, operator.id, true);
        if (!current) throw new Error('operator gone');
        await replaceTpsLimit(tx, operator.id, limit, 'test');
        await commitChange(tx, current, 'tps_updated', {}, 'test', () => ({ tpsLimit: limit }));
        const patched = h.api(`/operators/${operator.id}`, {
          method: 'PATCH',
          json: { name: 'After the wait' },
          headers: { 'If-Match': '*' },
        });
        // Waiting for this transaction's lock, not any lock of a test file running beside this one.
        await waitUntilBlockedBy(h.resources.db, await backendPid(tx), {
          failure: "the PATCH never waited for the TPS change's lock",
        });
        await tx.query('COMMIT');
        const res = await patched;
        expect(res.status).toBe(200);
        expect(await res.json()).toMatchObject({
          version: operator.version + 2,
          tpsLimit: limit,
          name: 'After the wait',
        });
      } finally {
        // Destroyed, not pooled: a failure before COMMIT must not leave its transaction open.
        tx.release(true);
      }
      const published = await events.waitFor(operator.id, (e) => e.some((x) => x.type === 'operator.config.updated'));
      const updated = published.find((e) => e.type === 'operator.config.updated');
      expect(updated).toMatchObject({ version: operator.version + 2, data: { operator: { tpsLimit: limit } } });
    });

    it('refuses a stale version, an operator still being created or one no longer live, its row and outbox untouched', async () => {
      // The update is made before these checks (it takes the row's lock) and rolled back by them.
      for (const [status, version, ifMatch, refusal] of [
        ['ACTIVE', 3, '"2"', 412],
        ['ONBOARDING', 0, '"0"', 409],
        ['ONBOARDING_FAILED', 2, '"2"', 409],
      ] as const) {
        const id = randomUUID();
        await h.resources.db.query(
          `INSERT INTO ops.operators (id, name, host, port, system_id, bind_type, window_size, enquire_link_interval_s,
                                      status, version, credentials_version, created_by, updated_by)
           VALUES ($1::uuid, 'Refused carrier', $1::text || '.example.net', 2775, 'acct', 'transceiver', 10, 30, $2, $3, 1, 'test', 'test')`,
          [id, status, version],
        );
        const before = await h.resources.db.query('SELECT * FROM ops.operators WHERE id = $1', [id]);
        const res = await h.api(`/operators/${id}`, {
          method: 'PATCH',
          json: { name: 'Renamed' },
          headers: { 'If-Match': ifMatch },
        });
        await expectProblem(res, refusal);
        const after = await h.resources.db.query('SELECT * FROM ops.operators WHERE id = $1', [id]);
        expect(after.rows).toEqual(before.rows);
        const outbox = await h.resources.db.query('SELECT 1 FROM ops.event_outbox WHERE operator_id = $1', [id]);
        expect(outbox.rowCount).toBe(0);
      }
    });

    it('answers 409 naming the holder when the new endpoint belongs to another live operator', async () => {
      const holder = await announcedOperator();
      // Same SMPP account (systemId) on another host: moving it onto the holder's host clashes.
      const mover = await announcedOperator({ systemId: holder.operator.systemId });

      const res = await h.api(`/operators/${mover.operator.id}`, {
        method: 'PATCH',
        json: { host: holder.operator.host.toUpperCase(), port: holder.operator.port },
        headers: { 'If-Match': mover.etag },
      });
      const { body } = await expectProblem(res, 409);
      expect(body.existingOperatorId).toBe(holder.operator.id);
      // The precondition comes first: with a stale If-Match the same clash is a 412.
      const stale = await h.api(`/operators/${mover.operator.id}`, {
        method: 'PATCH',
        json: { host: holder.operator.host, port: holder.operator.port },
        headers: { 'If-Match': `"${mover.operator.version + 5}"` },
      });
      await expectProblem(stale, 412);

      const after = (await (await h.api(`/operators/${mover.operator.id}`)).json()) as Operator;
      expect(after).toMatchObject({ host: mover.operator.host, version: mover.operator.version });
    });
  });

  describe('GET /operators/{id}/workflows', () => {
    it('lists the onboarding run with its type and a Temporal UI link', async () => {
      const { operator, workflowId } = await onboard();
      expect(workflowId).toBe(`onboarding-${operator.id}`);

      // Temporal visibility is eventually consistent.
      let runs: WorkflowRunBody[] = [];
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const res = await h.api(`/operators/${operator.id}/workflows`);
        expect(res.status).toBe(200);
        runs = ((await res.json()) as { items: WorkflowRunBody[] }).items;
        if (runs.some((r) => r.workflowId === workflowId)) break;
        await sleep(250);
      }
      const run = runs.find((r) => r.workflowId === workflowId);
      expect(run).toMatchObject({ workflowId, type: 'onboardOperator', status: 'RUNNING', runId: expect.any(String) });
      expect(run?.url.startsWith(h.config.temporal.uiUrl)).toBe(true);
      expect(run?.url).toContain(encodeURIComponent(workflowId));
      expect(run?.url).toContain(run?.runId);
      // Only this operator's runs.
      expect(runs.every((r) => r.workflowId.endsWith(operator.id))).toBe(true);
    });

    it('answers 404 for an operator that does not exist', async () => {
      await expectProblem(await h.api(`/operators/${randomUUID()}/workflows`), 404);
    });
  });
});
