import { workflowIds } from '../src/domain/workflow-ids';
import { EventWatcher } from './support/events';
import { report, startIngestion, waitUntil, type Ingestion } from './support/health-fixtures';
import { newOperatorRequest, startHarness, type Harness } from './support/harness';

/**
 * The end-to-end chains: a connector's report on `connector.health.<id>` (the real subject and
 * stream) reaches the workflow that waits for it through the health pipeline, no hand-sent signal.
 */

describe('connector reports drive the workflows', () => {
  let h: Harness;
  let ingestion: Ingestion;
  let events: EventWatcher;

  beforeAll(async () => {
    h = await startHarness({ bindTimeoutS: 30, drainTimeoutS: 30 });
    ingestion = await startIngestion(
      { config: h.config, ...h.resources },
      { prefix: 'connector.health', stream: h.config.health.stream },
    );
    events = await EventWatcher.start(h.resources.nats, h.config.nats.stream);
  });
  afterAll(async () => {
    await events?.stop();
    await ingestion?.stop();
    await h?.stop();
  });

  let operatorId: string;

  it('activates an onboarding on the first UP report', async () => {
    const res = await h.api('/operators', { method: 'POST', json: newOperatorRequest() });
    expect(res.status).toBe(202);
    const { operator } = (await res.json()) as { operator: { id: string } };
    operatorId = operator.id;
    await events.waitFor(operatorId, (e) => e.some((x) => x.type === 'operator.config.created'));

    // DOWN first: the onboarding keeps waiting.
    await ingestion.publish(operatorId, report(operatorId, { status: 'DOWN', boundSessions: 0 }));
    await ingestion.publish(operatorId, report(operatorId, { status: 'UP' }));

    const handle = h.resources.temporal.workflow.getHandle(workflowIds.onboarding(operatorId));
    await expect(handle.result()).resolves.toMatchObject({ status: 'ACTIVE' });
    const got = (await (await h.api(`/operators/${operatorId}`)).json()) as { status: string };
    expect(got.status).toBe('ACTIVE');
  });

  it('rolls a rotation back on AUTH_FAILED with the new credentials version', async () => {
    const res = await h.api(`/operators/${operatorId}/credentials/rotate`, {
      method: 'POST',
      json: { password: 'newpw1' },
    });
    expect(res.status).toBe(202);
    const pending = await waitUntil('the pending version', async () => {
      const { rows } = await h.resources.db.query<{ v: number | null }>(
        'SELECT pending_credentials_version AS v FROM ops.operators WHERE id = $1',
        [operatorId],
      );
      return rows[0]?.v ?? undefined;
    });
    // A report with the old version says nothing about the new one.
    await ingestion.publish(operatorId, report(operatorId, { status: 'AUTH_FAILED', credentialsVersion: pending - 1 }));
    await ingestion.publish(operatorId, report(operatorId, { status: 'AUTH_FAILED', credentialsVersion: pending }));

    const handle = h.resources.temporal.workflow.getHandle(workflowIds.rotation(operatorId));
    await expect(handle.result()).rejects.toThrow();
    await events.waitFor(operatorId, (e) => e.some((x) => x.type === 'operator.config.credentials_rolled_back'));
  });

  it('completes a drain when the connector reports nothing in flight', async () => {
    const res = await h.api(`/operators/${operatorId}`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    await events.waitFor(operatorId, (e) => e.some((x) => x.type === 'operator.config.draining'));
    await ingestion.publish(operatorId, report(operatorId, { status: 'UP', inflight: 3 }));
    await ingestion.publish(operatorId, report(operatorId, { status: 'UP', inflight: 0 }));

    await events.waitFor(operatorId, (e) => e.some((x) => x.type === 'operator.config.deleted'), 20_000);
    expect((await h.api(`/operators/${operatorId}`)).status).toBe(404);
  });
});
