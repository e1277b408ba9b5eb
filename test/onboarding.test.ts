import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { expectReplays } from './support/replay';
import nodeVault from 'node-vault';
import { createKvStore } from '../src/clients/vault';
import { createOnboardingActivities } from '../src/activities/onboarding';
import { credentialsPath, stagedCredentialsPath } from '../src/domain/credentials';
import { OPERATOR_ID } from '../src/domain/workflow-ids';
import { connectorHealthSignal } from '../src/workflows/messages';
import { EventWatcher } from './support/events';
import { newOperatorRequest, startHarness, type Harness } from './support/harness';
import { insertActiveOperator } from './support/outbox-fixtures';
import { backendPid, waitUntilBlockedBy } from './support/pg-locks';
import { expectNoSecret } from './support/secrets';

interface Accepted {
  operator: { id: string; status: string; version: number };
  workflowId: string;
  workflowUrl: string;
}

const UP = {
  status: 'UP' as const,
  credentialsVersion: 1,
  inflight: 0,
  reportedAt: new Date().toISOString(),
  connectorInstance: 'smpp-connector-test',
};

async function onboard(h: Harness, body: Record<string, unknown>): Promise<Accepted> {
  const res = await h.api('/operators', { method: 'POST', json: body });
  expect(res.status).toBe(202);
  return (await res.json()) as Accepted;
}

/**
 * A transaction holding a new prefix table's row as `lock` (an entries change: FOR NO KEY UPDATE;
 * a deletion: FOR UPDATE) takes it, and a wait until another session queues behind it.
 */
async function holdNewTable(h: Harness, lock: 'FOR NO KEY UPDATE' | 'FOR UPDATE') {
  const created = await h.api('/prefix-tables', { method: 'POST', json: { name: `held ${randomUUID()}` } });
  expect(created.status).toBe(201);
  const table = (await created.json()) as { id: string };
  const tx = await h.resources.db.connect();
  let holder: number;
  try {
    await tx.query('BEGIN');
    await tx.query(`SELECT 1 FROM ops.prefix_tables WHERE id = $1 ${lock}`, [table.id]);
    holder = await backendPid(tx);
  } catch (err) {
    tx.release(true);
    throw err;
  }
  return {
    tableId: table.id,
    tx,
    async untilWaitedFor(): Promise<void> {
      await waitUntilBlockedBy(h.resources.db, holder, { failure: 'nobody queued behind the held table' });
    },
  };
}

/** Every string and byte run (decoded as UTF-8) inside a value: payloads are bytes in history. */
function textOf(value: unknown): string[] {
  if (value instanceof Uint8Array) return [Buffer.from(value).toString('utf8')];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(textOf);
  if (value && typeof value === 'object') return Object.values(value).flatMap(textOf);
  return [];
}

/** Everything the service stores about an operator outside Vault, as one string to search. */
async function everythingStoredAbout(
  h: Harness,
  operatorId: string,
  workflowId: string,
  systemId: string,
): Promise<string> {
  const { db, temporal } = h.resources;
  const rows = await Promise.all([
    db.query('SELECT row_to_json(o) AS r FROM ops.operators o WHERE id = $1', [operatorId]),
    db.query('SELECT row_to_json(e) AS r FROM ops.event_outbox e WHERE operator_id = $1', [operatorId]),
    db.query('SELECT row_to_json(r) AS r FROM ops.routing_rules r WHERE operator_id = $1', [operatorId]),
    db.query('SELECT row_to_json(k) AS r FROM ops.idempotency_keys k'),
  ]);
  const history = textOf(await temporal.workflow.getHandle(workflowId).fetchHistory()).join('\n');
  // The search must see inside payloads: the systemId travels only in the workflow input.
  expect(history).toContain(`"systemId":"${systemId}"`);
  return JSON.stringify(rows.map((r) => r.rows)) + history;
}

describe('onboarding', () => {
  let h: Harness;
  let events: EventWatcher;
  /** Finished runs whose histories the replay test checks against the current workflow code. */
  const finished: string[] = [];

  beforeAll(async () => {
    h = await startHarness({ bindTimeoutS: 3 });
    events = await EventWatcher.start(h.resources.nats, h.config.nats.stream);
  });
  afterAll(async () => {
    await events.stop();
    await h.stop();
  });

  it('carries an operator from POST to ACTIVE through PostgreSQL, Vault and NATS', async () => {
    const body = newOperatorRequest();
    const res = await h.api('/operators', { method: 'POST', json: body });
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as Accepted;
    const id = accepted.operator.id;
    expect(accepted.operator.status).toBe('ONBOARDING');
    expect(res.headers.get('location')).toBe(`/v1/admin/operators/${id}`);
    expect(accepted.workflowId).toBe(`onboarding-${id}`);
    expect(accepted.workflowUrl).toContain(encodeURIComponent(accepted.workflowId));

    const handle = h.resources.temporal.workflow.getHandle(accepted.workflowId);
    finished.push(accepted.workflowId);
    await handle.signal(connectorHealthSignal, UP);
    await expect(handle.result()).resolves.toMatchObject({ status: 'ACTIVE', credentialsVersion: 1 });

    const got = await h.api(`/operators/${id}`);
    expect(got.status).toBe(200);
    const operator = (await got.json()) as Record<string, unknown>;
    expect(operator).toMatchObject({ status: 'ACTIVE', version: 2, credentialsVersion: 1, createdBy: 'test-admin' });
    expect(operator.tpsLimit).toEqual(body.tpsLimit);
    expect(got.headers.get('etag')).toBe('"2"');

    const secret = await h.resources.kv.read(credentialsPath(id));
    expect(secret).toEqual({ version: 1, data: { system_id: body.systemId, password: body.password } });
    expect(await h.resources.kv.read(stagedCredentialsPath(id))).toBeUndefined();

    const published = await events.waitFor(id, (e) => e.length >= 2);
    expect(published.map((e) => [e.type, e.version])).toEqual([
      ['operator.config.created', 1],
      ['operator.config.activated', 2],
    ]);
    for (const e of published) {
      expect(e).toMatchObject({ operatorId: id, actor: 'test-admin' });
      expect(events.msgIdOf(e)).toBe(e.eventId);
    }
    expect(published[0]?.data).toMatchObject({ routingRules: [{ prefixes: ['2547', '2541'], currency: 'EUR' }] });

    // The password lives only in Vault.
    const elsewhere =
      JSON.stringify(published) + (await everythingStoredAbout(h, id, accepted.workflowId, body.systemId as string));
    expect(elsewhere).toContain(body.systemId as string);
    expectNoSecret(elsewhere, body.password);
  });

  // Every other branch (bind timeout, AUTH_FAILED, a refused step) is in test/workflows/onboarding.test.ts.
  it("announces an operator only once an entries change of its rules' table has committed", async () => {
    // An entries change holds the table's row (as src/services/prefix-tables.ts takes it) while
    // the operator is created: `created` waits for it, so the change either tells the operator
    // or is in the tables a consumer reads for its `created`.
    const held = await holdNewTable(h, 'FOR NO KEY UPDATE');
    try {
      const body = newOperatorRequest({
        routingRules: [
          { prefixTableId: held.tableId, priority: 1, weight: 1, costPerSegment: '0.01', currency: 'EUR' },
        ],
      });
      const accepted = await onboard(h, body);
      await held.untilWaitedFor();
      const during = (await (await h.api(`/operators/${accepted.operator.id}`)).json()) as { version: number };
      expect(during.version).toBe(0);
      await held.tx.query('COMMIT');
      const published = await events.waitFor(accepted.operator.id, (e) => e.length >= 1);
      expect(published[0]).toMatchObject({ type: 'operator.config.created', version: 1 });
      // Not left running: its compensation would still be going when the worker stops.
      const handle = h.resources.temporal.workflow.getHandle(accepted.workflowId);
      finished.push(accepted.workflowId);
      await handle.cancel();
      await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    } finally {
      held.tx.release(true);
    }
  });

  it('refuses with 422, saving nothing, an onboarding whose table is deleted between its check and its save', async () => {
    // A deletion's transaction (src/services/prefix-tables.ts) holds the table FOR UPDATE while
    // it checks that nothing uses it: the request's check sees the table live, the save waits.
    const held = await holdNewTable(h, 'FOR UPDATE');
    try {
      const body = newOperatorRequest({
        routingRules: [
          { prefixes: ['49'], priority: 1, weight: 1, costPerSegment: '0.01', currency: 'EUR' },
          { prefixTableId: held.tableId, priority: 1, weight: 1, costPerSegment: '0.01', currency: 'EUR' },
        ],
      });
      const since = new Date(Date.now() - 60_000).toISOString();
      const requestId = randomUUID();
      const answer = h.api('/operators', { method: 'POST', json: body, headers: { 'X-Request-Id': requestId } });
      // The save waits for the deletion: the race is really run, not refused by the request's check.
      await held.untilWaitedFor();
      await held.tx.query('UPDATE ops.prefix_tables SET deleted_at = now(), version = version + 1 WHERE id = $1', [
        held.tableId,
      ]);
      await held.tx.query('COMMIT');

      const res = await answer;
      expect(res.status).toBe(422);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await res.json()).toMatchObject({
        errors: [{ field: 'routingRules[1].prefixTableId', message: 'no such prefix table' }],
      });
      const saved = await h.resources.db.query('SELECT 1 FROM ops.operators WHERE host = $1', [body.host]);
      expect(saved.rowCount).toBe(0);
      const rules = await h.resources.db.query(
        'SELECT 1 FROM ops.routing_rules WHERE prefix_table_id = $1 AND deleted_at IS NULL',
        [held.tableId],
      );
      expect(rules.rowCount).toBe(0);

      // The refused workflow compensates: awaited, so nothing runs on when the worker stops.
      const refused = await onboardingOfRequest(requestId, since);
      await expect(h.resources.temporal.workflow.getHandle(refused.workflowId).result()).rejects.toBeInstanceOf(
        WorkflowFailedError,
      );
      expect(await h.resources.kv.currentVersion(stagedCredentialsPath(refused.operatorId))).toBeUndefined();
    } finally {
      held.tx.release(true);
    }
  });

  /** The onboarding a request started (its id travels in the memo; visibility lags: asked until it answers). */
  async function onboardingOfRequest(
    requestId: string,
    since: string,
  ): Promise<{ workflowId: string; operatorId: string }> {
    const query = `WorkflowType = 'onboardOperator' AND StartTime > '${since}'`;
    for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
      for await (const wf of h.resources.temporal.workflow.list({ query })) {
        const operatorId = wf.typedSearchAttributes.get(OPERATOR_ID);
        if (operatorId && wf.memo?.requestId === requestId) return { workflowId: wf.workflowId, operatorId };
      }
    }
    throw new Error(`the onboarding of request ${requestId} is not listed`);
  }

  it('a retried activation leaves an operator drained since as it is', async () => {
    // Activation committed, its reply was lost, and a drain began before the retry.
    const id = await insertActiveOperator(h.resources.db, 'onboarding-test');
    await h.resources.db.query(`UPDATE ops.operators SET status = 'DRAINING', version = 2 WHERE id = $1`, [id]);
    const { activateOperator } = createOnboardingActivities(h.resources);
    expect(await activateOperator(id, 'onboarding-test')).toMatchObject({ status: 'DRAINING', version: 2 });
    const { rows } = await h.resources.db.query('SELECT status, version FROM ops.operators WHERE id = $1', [id]);
    expect(rows).toEqual([{ status: 'DRAINING', version: '2' }]);
  });

  it('a late compensation finds an operator deleted since (not "never saved", whose secret it would destroy)', async () => {
    // Activated, then drained and deleted while the onboarding's last publish waited for NATS.
    const id = await insertActiveOperator(h.resources.db, 'onboarding-test');
    await h.resources.db.query(
      `UPDATE ops.operators SET status = 'DELETED', deleted_at = now(), version = 4 WHERE id = $1`,
      [id],
    );
    const { markOnboardingFailed } = createOnboardingActivities(h.resources);
    // Not null ("never saved", whose secret the compensation would destroy): the deleted operator.
    expect(await markOnboardingFailed(id, 'cancelled', 'onboarding-test')).toMatchObject({ status: 'DELETED' });
    const { rows } = await h.resources.db.query('SELECT status, version FROM ops.operators WHERE id = $1', [id]);
    expect(rows).toEqual([{ status: 'DELETED', version: '4' }]);
  });

  it('compensates when ops cancel an onboarding that waits for its bind, and frees the endpoint', async () => {
    const body = newOperatorRequest();
    const accepted = await onboard(h, body);
    const id = accepted.operator.id;
    const handle = h.resources.temporal.workflow.getHandle(accepted.workflowId);
    finished.push(accepted.workflowId);
    await events.waitFor(id, (e) => e.length >= 1);
    await handle.cancel();
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    expect((await handle.describe()).status.name).toBe('CANCELLED');

    const operator = (await (await h.api(`/operators/${id}`)).json()) as Record<string, unknown>;
    expect(operator).toMatchObject({ status: 'ONBOARDING_FAILED', statusReason: 'cancelled', version: 2 });
    expect(await h.resources.kv.currentVersion(credentialsPath(id))).toBeUndefined();
    expect(await h.resources.kv.currentVersion(stagedCredentialsPath(id))).toBeUndefined();
    const published = await events.waitFor(id, (e) => e.length >= 2);
    expect(published.map((e) => [e.type, e.version])).toEqual([
      ['operator.config.created', 1],
      ['operator.config.onboarding_failed', 2],
    ]);

    const again = await onboard(h, body);
    expect(again.operator.id).not.toBe(id);
    expect(again.operator.status).toBe('ONBOARDING');
  });

  it('answers one 202 and one 409 naming the winner to two concurrent onboardings of one endpoint', async () => {
    const body = newOperatorRequest();
    const answers = await Promise.all([
      h.api('/operators', { method: 'POST', json: body }),
      h.api('/operators', { method: 'POST', json: { ...body, name: 'the other one' } }),
    ]);
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([202, 409]);
    const winner = answers.find((a) => a.status === 202) as Response;
    const loser = answers.find((a) => a.status === 409) as Response;
    const accepted = (await winner.json()) as Accepted;
    expect(loser.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await loser.json()) as { existingOperatorId: string; detail: string };
    expect(problem.existingOperatorId).toBe(accepted.operator.id);
    expect(problem.detail).toContain(accepted.operator.id);

    const { rows } = await h.resources.db.query('SELECT id FROM ops.operators WHERE host = $1', [body.host]);
    expect(rows).toHaveLength(1);
  });

  it('refuses, before staging anything, an operator whose created event would not fit a NATS message', async () => {
    // Under the 1 MiB body limit as a request, over the event limit once the event adds its fields.
    const routingRules = Array.from({ length: 100 }, (_, n) => ({
      prefixes: Array.from({ length: 560 }, (_, k) => `2${String(n).padStart(3, '0')}${String(k).padStart(11, '0')}`),
      priority: 1,
      weight: 100,
      costPerSegment: '0.0125',
      currency: 'EUR',
    }));
    const body = newOperatorRequest({ routingRules });
    expect(JSON.stringify(body).length).toBeLessThan(1024 * 1024);
    const res = await h.api('/operators', { method: 'POST', json: body });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ errors: [{ field: 'routingRules' }] });
    const { rows } = await h.resources.db.query('SELECT 1 FROM ops.operators WHERE host = $1', [body.host]);
    expect(rows).toHaveLength(0);
  });

  it('replays a repeated Idempotency-Key without starting anything new', async () => {
    const body = newOperatorRequest();
    const key = `key-${body.host as string}`;
    const first = await h.api('/operators', { method: 'POST', json: body, headers: { 'Idempotency-Key': key } });
    const second = await h.api('/operators', { method: 'POST', json: body, headers: { 'Idempotency-Key': key } });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.headers.get('location')).toBe(first.headers.get('location'));
    const [a, b] = (await Promise.all([first.json(), second.json()])) as Accepted[];
    expect(b?.operator.id).toBe(a?.operator.id);

    const { rows } = await h.resources.db.query('SELECT id FROM ops.operators WHERE host = $1', [body.host]);
    expect(rows).toHaveLength(1);

    const other = await h.api('/operators', {
      method: 'POST',
      json: { ...body, name: 'changed' },
      headers: { 'Idempotency-Key': key },
    });
    expect(other.status).toBe(422);
  });

  it('answers 409 while a key is in progress and reclaims a key its process abandoned', async () => {
    const claim = (key: string, age: string) =>
      h.resources.db.query(
        `INSERT INTO ops.idempotency_keys (actor, key, request_hash, created_at, updated_at, created_by, updated_by)
         VALUES ('test-admin', $1, 'in-progress', now() - $2::interval, now() - $2::interval, 'test-admin', 'test-admin')`,
        [key, age],
      );
    const body = newOperatorRequest();
    const busy = `busy-${body.host as string}`;
    const abandoned = `abandoned-${body.host as string}`;
    await claim(busy, '1 second');
    await claim(abandoned, '3 minutes');

    const whileBusy = await h.api('/operators', { method: 'POST', json: body, headers: { 'Idempotency-Key': busy } });
    expect(whileBusy.status).toBe(409);
    expect(whileBusy.headers.get('retry-after')).toBe('5');
    const reclaimed = await h.api('/operators', {
      method: 'POST',
      json: body,
      headers: { 'Idempotency-Key': abandoned },
    });
    expect(reclaimed.status).toBe(202);
  });

  it('ends ONBOARDING_FAILED with no secret left when Vault refuses the write', async () => {
    // A real Vault refusal: a token whose policy may read and destroy but not write credentials.
    const root = nodeVault({ endpoint: h.config.vault.addr, token: 'dev-root-token' });
    await root.addPolicy({
      name: 'onboarding-cannot-write',
      rules: `
        path "secret/data/ops/staging/*" { capabilities = ["read"] }
        path "secret/metadata/ops/*" { capabilities = ["read", "delete"] }
        path "secret/data/ops/operators/*" { capabilities = ["read"] }`,
    });
    const { auth } = (await root.tokenCreate({ policies: ['onboarding-cannot-write'], ttl: '10m' })) as {
      auth: { client_token: string };
    };
    const restricted = await createKvStore({ ...h.config.vault, auth: { kind: 'token', token: auth.client_token } });
    const vh = await startHarness({ workerKv: restricted });
    try {
      const body = newOperatorRequest();
      const accepted = await onboard(vh, body);
      const id = accepted.operator.id;
      const handle = vh.resources.temporal.workflow.getHandle(accepted.workflowId);
      await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);

      const operator = (await (await vh.api(`/operators/${id}`)).json()) as Record<string, unknown>;
      expect(operator.status).toBe('ONBOARDING_FAILED');
      expect(operator.statusReason).toMatch(/permission denied/);
      expect(await vh.resources.kv.currentVersion(credentialsPath(id))).toBeUndefined();
      expect(await vh.resources.kv.currentVersion(stagedCredentialsPath(id))).toBeUndefined();
      expectNoSecret(await everythingStoredAbout(vh, id, accepted.workflowId, body.systemId as string), body.password);

      const again = await onboard(vh, body);
      expect(again.operator.status).toBe('ONBOARDING');
    } finally {
      await vh.stop();
    }
  });

  it('replays the finished histories deterministically with the current workflow code', async () => {
    expect(finished.length).toBeGreaterThanOrEqual(2);
    await expectReplays(
      h.resources.temporal,
      finished.map((workflowId) => ({ workflowId })),
    );
  });
});
