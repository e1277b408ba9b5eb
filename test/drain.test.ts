import { connectorHealthSignal } from '../src/workflows/messages';
import { healthKey } from '../src/domain/health';
import { EventWatcher } from './support/events';
import { newOperatorRequest, startHarness, type Harness } from './support/harness';
import { onboardActive } from './support/rotation';

interface Operator {
  id: string;
  status: string;
  version: number;
}

const report = (inflight: number, connectorInstance = 'smpp-connector-test', reportedAt = new Date()) => ({
  status: 'UP' as const,
  credentialsVersion: 1,
  inflight,
  reportedAt: reportedAt.toISOString(),
  connectorInstance,
});

async function drain(h: Harness, id: string): Promise<Response> {
  return h.api(`/operators/${id}`, { method: 'DELETE' });
}

describe('drain (soft delete)', () => {
  let h: Harness;
  let events: EventWatcher;

  beforeAll(async () => {
    h = await startHarness({ bindTimeoutS: 30, drainTimeoutS: 60 });
    events = await EventWatcher.start(h.resources.nats, h.config.nats.stream);
  });
  afterAll(async () => {
    await events.stop();
    await h.stop();
  });

  it('drains until nothing is in flight, then soft-deletes, announces and forgets the health entry', async () => {
    const { id, body } = await onboardActive(h);
    const op = { id };
    await h.resources.redis.set(healthKey(op.id), JSON.stringify({ status: 'UP' }), 'EX', 60);

    const res = await drain(h, op.id);
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as { operator: Operator; workflowId: string; workflowUrl: string };
    expect(accepted.operator).toMatchObject({ id: op.id, status: 'DRAINING', version: 3 });
    expect(accepted.workflowId).toBe(`drain-${op.id}`);
    expect(res.headers.get('location')).toBe(`/v1/admin/operators/${op.id}/workflows`);

    // Still in flight: the drain keeps waiting.
    const handle = h.resources.temporal.workflow.getHandle(accepted.workflowId);
    await handle.signal(connectorHealthSignal, report(7));
    await events.waitFor(op.id, (e) => e.some((x) => x.type === 'operator.config.draining'));
    expect((await handle.describe()).status.name).toBe('RUNNING');

    await handle.signal(connectorHealthSignal, report(0));
    await expect(handle.result()).resolves.toEqual({ operatorId: op.id, outcome: 'DELETED', reason: 'drained' });

    expect((await h.api(`/operators/${op.id}`)).status).toBe(404);
    const { rows } = await h.resources.db.query<{ status: string; deleted_at: Date | null; status_reason: string }>(
      'SELECT status, deleted_at, status_reason FROM ops.operators WHERE id = $1',
      [op.id],
    );
    expect(rows[0]).toMatchObject({ status: 'DELETED', status_reason: 'drained' });
    expect(rows[0]?.deleted_at).toBeInstanceOf(Date);
    const live = await h.resources.db.query(
      `SELECT 1 FROM ops.routing_rules WHERE operator_id = $1 AND deleted_at IS NULL
       UNION ALL SELECT 1 FROM ops.tps_limits WHERE operator_id = $1 AND deleted_at IS NULL`,
      [op.id],
    );
    expect(live.rowCount).toBe(0);
    expect(await h.resources.redis.exists(healthKey(op.id))).toBe(0);

    const published = await events.waitFor(op.id, (e) => e.length >= 4);
    expect(published.map((e) => [e.type, e.version])).toEqual([
      ['operator.config.created', 1],
      ['operator.config.activated', 2],
      ['operator.config.draining', 3],
      ['operator.config.deleted', 4],
    ]);
    expect(published[3]?.data).toMatchObject({ reason: 'drained', operator: { status: 'DELETED' } });

    // The endpoint is free for a new operator.
    const again = await h.api('/operators', { method: 'POST', json: body });
    expect(again.status).toBe(202);
  });

  it('waits for every connector instance and ignores a report from before the drain', async () => {
    const { id } = await onboardActive(h);
    const res = await drain(h, id);
    expect(res.status).toBe(202);
    const { workflowId } = (await res.json()) as { workflowId: string };
    const handle = h.resources.temporal.workflow.getHandle(workflowId);
    await events.waitFor(id, (e) => e.some((x) => x.type === 'operator.config.draining'));

    // Stamped before the drain began: says nothing about now. Then one instance at 0 while the
    // other still works off messages.
    await handle.signal(connectorHealthSignal, report(0, 'connector-a', new Date(Date.now() - 60_000)));
    await handle.signal(connectorHealthSignal, report(3, 'connector-b'));
    await handle.signal(connectorHealthSignal, report(0, 'connector-a'));
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await handle.describe()).status.name).toBe('RUNNING');
    expect(((await (await h.api(`/operators/${id}`)).json()) as Operator).status).toBe('DRAINING');

    await handle.signal(connectorHealthSignal, report(0, 'connector-b'));
    await expect(handle.result()).resolves.toEqual({ operatorId: id, outcome: 'DELETED', reason: 'drained' });
  });

  it('is cancelled back to ACTIVE before the soft delete, and can start again later', async () => {
    const op = await onboardActive(h);
    expect((await drain(h, op.id)).status).toBe(202);
    expect((await drain(h, op.id)).status).toBe(409);

    const cancel = await h.api(`/operators/${op.id}/drain/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(200);
    expect(await cancel.json()).toMatchObject({ id: op.id, status: 'ACTIVE', version: 4 });
    expect(cancel.headers.get('etag')).toBe('"4"');
    const result = await h.resources.temporal.workflow.getHandle(`drain-${op.id}`).result();
    expect(result).toMatchObject({ outcome: 'CANCELLED' });

    const again = await h.api(`/operators/${op.id}/drain/cancel`, { method: 'POST' });
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toContain('application/problem+json');

    const published = await events.waitFor(op.id, (e) => e.length >= 4);
    expect(published.slice(2).map((e) => [e.type, e.version])).toEqual([
      ['operator.config.draining', 3],
      ['operator.config.drain_cancelled', 4],
    ]);

    // A new drain of the same operator runs under the same workflow id.
    const second = await drain(h, op.id);
    expect(second.status).toBe(202);
    expect(((await second.json()) as { operator: Operator }).operator).toMatchObject({
      status: 'DRAINING',
      version: 5,
    });
    expect((await h.api(`/operators/${op.id}/drain/cancel`, { method: 'POST' })).status).toBe(200);
  });

  // A Temporal cancel, the drain timeout and the update validators: test/workflows/drain.test.ts.
  it('refuses what it cannot drain, writing nothing', async () => {
    expect((await drain(h, '6f1c2f9e-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await drain(h, 'not-a-uuid')).status).toBe(400);
    expect(
      (await h.api('/operators/6f1c2f9e-0000-4000-8000-000000000000/drain/cancel', { method: 'POST' })).status,
    ).toBe(404);

    // Still ONBOARDING: a drain is refused; cancelling a drain that never started too.
    const res = await h.api('/operators', { method: 'POST', json: newOperatorRequest() });
    const { operator } = (await res.json()) as { operator: Operator };
    const refused = await drain(h, operator.id);
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { detail: string }).detail).toMatch(/ONBOARDING/);
    expect((await h.api(`/operators/${operator.id}/drain/cancel`, { method: 'POST' })).status).toBe(409);
    const { rows } = await h.resources.db.query<{ status: string; version: string }>(
      'SELECT status, version FROM ops.operators WHERE id = $1',
      [operator.id],
    );
    expect(rows[0]?.status).toBe('ONBOARDING');
  });
});
