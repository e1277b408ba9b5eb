import { WorkflowFailedError } from '@temporalio/client';
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
  /** Reports the consumer has processed to the end (log, cache, events, signals) and acked. */
  const consumed = async () => (await ingestion.metrics.consumed.get()).values.reduce((sum, v) => sum + v.value, 0);

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
    const handle = h.resources.temporal.workflow.getHandle(workflowIds.rotation(operatorId));
    // A report with the old version says nothing about the new one: once it is fully processed
    // (signals included), the rotation still waits.
    const before = await consumed();
    await ingestion.publish(operatorId, report(operatorId, { status: 'AUTH_FAILED', credentialsVersion: pending - 1 }));
    await waitUntil('the old-version report processed', async () => ((await consumed()) > before ? true : undefined));
    expect((await handle.describe()).status.name).toBe('RUNNING');

    await ingestion.publish(operatorId, report(operatorId, { status: 'AUTH_FAILED', credentialsVersion: pending }));
    const failure = await handle.result().catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause?.message).toBe(
      `the connector reported AUTH_FAILED with credentials version ${pending}`,
    );
    const published = await events.waitFor(operatorId, (e) =>
      e.some((x) => x.type === 'operator.config.credentials_rolled_back'),
    );
    expect(published.at(-1)?.data).toMatchObject({ rejectedCredentialsVersion: pending });
  });

  it('completes a drain when the connector reports nothing in flight', async () => {
    const res = await h.api(`/operators/${operatorId}`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    await events.waitFor(operatorId, (e) => e.some((x) => x.type === 'operator.config.draining'));
    // Still in flight: once that report is fully processed, the drain keeps waiting.
    const before = await consumed();
    await ingestion.publish(operatorId, report(operatorId, { status: 'UP', inflight: 3 }));
    await waitUntil('the in-flight report processed', async () => ((await consumed()) > before ? true : undefined));
    const drain = h.resources.temporal.workflow.getHandle(workflowIds.drain(operatorId));
    expect((await drain.describe()).status.name).toBe('RUNNING');

    await ingestion.publish(operatorId, report(operatorId, { status: 'UP', inflight: 0 }));
    await expect(drain.result()).resolves.toMatchObject({ outcome: 'DELETED', reason: 'drained' });
    const published = await events.waitFor(operatorId, (e) => e.some((x) => x.type === 'operator.config.deleted'));
    expect(published.at(-1)?.data).toMatchObject({ reason: 'drained' });
    expect((await h.api(`/operators/${operatorId}`)).status).toBe(404);
  });
});
