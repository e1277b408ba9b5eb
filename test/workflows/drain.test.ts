import { randomUUID } from 'node:crypto';
import { WorkflowUpdateStage, type WorkflowHandle } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { CONFLICT } from '../../src/domain/failures';
import type { Operator } from '../../src/domain/operator';
import {
  cancelDrainUpdate,
  drainOperator,
  drainSteps,
  type DrainInput,
  type DrainStep,
} from '../../src/workflows/drain';
import { connectorHealthSignal } from '../../src/workflows/messages';
import {
  OPERATOR_ID,
  blocking,
  useTimeSkippingEnv,
  deferred,
  failing,
  fakeOperator,
  report,
  startAccepted,
  stubActivities,
  uniqueTaskQueue,
  updateFailure,
  waitForStep,
  withWorker,
  workflowFailure,
} from '../support/time-skipping';

const DRAIN_TIMEOUT_S = 600;
const ACTOR = 'test-admin';

const WINDOW_S = 60;
/** The steps of a drain cancelled once it had marked the operator DRAINING. */
const CANCELLED_AFTER_MARKING = [
  'beginDrain',
  'recentConnectorReports',
  'publishPendingEvents',
  'cancelDrain',
  'publishPendingEvents',
];
const input = (): DrainInput => ({
  operatorId: OPERATOR_ID,
  actor: ACTOR,
  drainTimeoutS: DRAIN_TIMEOUT_S,
  instanceWindowS: WINDOW_S,
});

describe('drainOperator', () => {
  const env = useTimeSkippingEnv();

  /** A report of `count` in flight from `instance`, stamped now (test-server time) minus `ageMs`. */
  const inflight = async (count: number, instance = 'connector-a', ageMs = 0) =>
    report('UP', 1, count, {
      reportedAt: new Date((await env().currentTimeMs()) + 1 - ageMs).toISOString(),
      connectorInstance: instance,
    });
  const startDrain = (taskQueue: string) => startAccepted(env(), drainOperator, taskQueue, input());
  const stepOf = async (handle: WorkflowHandle): Promise<DrainStep> => (await handle.query(drainSteps.query)).step;
  const cancelDrain = (handle: WorkflowHandle, actor = 'ops-admin'): Promise<Operator> =>
    handle.executeUpdate(cancelDrainUpdate, { args: [{ actor }] });

  /** A drain held in its soft delete: `deleting` (its finishDrain) blocks until released. */
  async function heldInSoftDelete(taskQueue: string, deleting: { entered: Promise<unknown> }) {
    const { handle, accepted } = await startDrain(taskQueue);
    await accepted;
    await waitForStep(handle, drainSteps.query, 'waitingForEmpty');
    await handle.signal(connectorHealthSignal, await inflight(0));
    await deleting.entered;
    return handle;
  }

  it('soft-deletes once the connector reports nothing in flight', async () => {
    const stubs = stubActivities();
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startDrain(taskQueue);
      expect(await accepted).toMatchObject({ id: OPERATOR_ID, status: 'DRAINING' });

      await waitForStep(handle, drainSteps.query, 'waitingForEmpty');
      await handle.signal(connectorHealthSignal, await inflight(7));
      await handle.signal(connectorHealthSignal, await inflight(0));

      expect(await handle.result()).toEqual({ operatorId: OPERATOR_ID, outcome: 'DELETED', reason: 'drained' });
      expect(await stepOf(handle)).toBe('deleted');
    });
    expect(stubs.names()).toEqual([
      'beginDrain',
      'recentConnectorReports',
      'publishPendingEvents',
      'finishDrain',
      'forgetHealth',
      'publishPendingEvents',
    ]);
    expect(stubs.argsOf('finishDrain')).toEqual([[OPERATOR_ID, ACTOR, 'drained']]);
  });

  it('soft-deletes when the drain timeout runs out with messages still in flight', async () => {
    const stubs = stubActivities();
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      // Read before the drain starts: its timer starts before the test sees it waiting.
      const before = await env().currentTimeMs();
      const { handle, accepted } = await startDrain(taskQueue);
      await accepted;
      await waitForStep(handle, drainSteps.query, 'waitingForEmpty');
      await handle.signal(connectorHealthSignal, await inflight(5));

      expect(await handle.result()).toEqual({ operatorId: OPERATOR_ID, outcome: 'DELETED', reason: 'timeout' });
      expect((await env().currentTimeMs()) - before).toBeGreaterThanOrEqual(DRAIN_TIMEOUT_S * 1000);
      expect(await stepOf(handle)).toBe('deleted');
    });
    expect(stubs.argsOf('finishDrain')).toEqual([[OPERATOR_ID, ACTOR, 'timeout']]);
    expect(stubs.names()).toContain('forgetHealth');
  });

  it('runs its timeout from when `draining` is out, however long NATS kept it in', async () => {
    // NATS is down for longer than the drain timeout: `draining` goes out only after retries.
    let outageEndsAtMs = Infinity;
    let deletedAtMs = 0;
    const stubs = stubActivities({
      publishPendingEvents: async () => {
        const nowMs = await env().currentTimeMs();
        if (outageEndsAtMs === Infinity) outageEndsAtMs = nowMs + (DRAIN_TIMEOUT_S + 60) * 1000;
        if (nowMs < outageEndsAtMs) throw ApplicationFailure.retryable('NATS is unavailable', 'NatsDown');
        return 0;
      },
      finishDrain: async () => {
        deletedAtMs = await env().currentTimeMs();
      },
    });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startDrain(taskQueue);
      await accepted;
      // No connector reports: the drain times out, a whole timeout after `draining` went out.
      expect(await handle.result()).toMatchObject({ outcome: 'DELETED', reason: 'timeout' });
    });
    expect(deletedAtMs).toBeGreaterThanOrEqual(outageEndsAtMs + DRAIN_TIMEOUT_S * 1000);
  });

  it('does not count a report stamped before the drain began', async () => {
    const stubs = stubActivities();
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startDrain(taskQueue);
      await accepted;
      await waitForStep(handle, drainSteps.query, 'waitingForEmpty');
      await handle.signal(connectorHealthSignal, await inflight(0, 'connector-a', 10_000));

      expect(await handle.result()).toMatchObject({ outcome: 'DELETED', reason: 'timeout' });
    });
  });

  it('waits for every instance: one at 0 says nothing while another has messages in flight', async () => {
    let deletedAtMs = 0;
    const stubs = stubActivities({
      finishDrain: async () => {
        deletedAtMs = await env().currentTimeMs();
      },
    });
    let busySinceMs = 0;
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startDrain(taskQueue);
      await accepted;
      await waitForStep(handle, drainSteps.query, 'waitingForEmpty');
      busySinceMs = await env().currentTimeMs();
      await handle.signal(connectorHealthSignal, await inflight(4, 'connector-b'));
      // Stamped 5 s after connector-b's (time stands still here until the workflow waits).
      await handle.signal(connectorHealthSignal, await inflight(0, 'connector-a', -5_000));
      // connector-b never reports 0: the drain waits until it has been silent for the window.
      expect(await handle.result()).toMatchObject({ outcome: 'DELETED', reason: 'drained' });
    });
    expect(deletedAtMs).toBeGreaterThanOrEqual(busySinceMs + WINDOW_S * 1000);
  });

  it('soft-deletes once the last busy instance reports 0 too', async () => {
    let deletedAtMs = 0;
    const stubs = stubActivities({
      finishDrain: async () => {
        deletedAtMs = await env().currentTimeMs();
      },
    });
    let busySinceMs = 0;
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startDrain(taskQueue);
      await accepted;
      await waitForStep(handle, drainSteps.query, 'waitingForEmpty');
      busySinceMs = await env().currentTimeMs();
      await handle.signal(connectorHealthSignal, await inflight(4, 'connector-b'));
      await handle.signal(connectorHealthSignal, await inflight(0, 'connector-a'));
      await handle.signal(connectorHealthSignal, await inflight(0, 'connector-b'));
      expect(await handle.result()).toMatchObject({ outcome: 'DELETED', reason: 'drained' });
    });
    // At connector-b's 0, not once it had been silent for the window (the test above).
    expect(deletedAtMs).toBeGreaterThan(0);
    expect(deletedAtMs).toBeLessThan(busySinceMs + WINDOW_S * 1000);
  });

  it('waits for an instance the health log saw just before the drain, until it leaves the window', async () => {
    let stampedAtMs = 0;
    let deletedAtMs = 0;
    const stubs = stubActivities({
      recentConnectorReports: async () => {
        stampedAtMs = (await env().currentTimeMs()) - 5_000;
        return [{ connectorInstance: 'connector-b', inflight: 3, reportedAt: new Date(stampedAtMs).toISOString() }];
      },
      finishDrain: async () => {
        deletedAtMs = await env().currentTimeMs();
      },
    });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startDrain(taskQueue);
      await accepted;
      await waitForStep(handle, drainSteps.query, 'waitingForEmpty');
      await handle.signal(connectorHealthSignal, await inflight(0, 'connector-a'));

      // connector-b never reports again: once it is silent for the window, only connector-a counts.
      expect(await handle.result()).toMatchObject({ outcome: 'DELETED', reason: 'drained' });
    });
    expect(deletedAtMs).toBeGreaterThanOrEqual(stampedAtMs + WINDOW_S * 1000);
    expect(deletedAtMs).toBeLessThan(stampedAtMs + DRAIN_TIMEOUT_S * 1000);
    expect(stubs.argsOf('recentConnectorReports')).toEqual([[OPERATOR_ID, WINDOW_S]]);
  });

  it('puts the operator back to ACTIVE on a cancelDrain update before the soft delete', async () => {
    const stubs = stubActivities();
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startDrain(taskQueue);
      await accepted;
      await waitForStep(handle, drainSteps.query, 'waitingForEmpty');

      expect(await cancelDrain(handle)).toMatchObject({ id: OPERATOR_ID, status: 'ACTIVE', updatedBy: 'ops-admin' });
      expect(await handle.result()).toEqual({ operatorId: OPERATOR_ID, outcome: 'CANCELLED', reason: 'cancelled' });
      expect(await stepOf(handle)).toBe('cancelled');
    });
    expect(stubs.names()).toEqual(CANCELLED_AFTER_MARKING);
    expect(stubs.argsOf('cancelDrain')).toEqual([[OPERATOR_ID, 'ops-admin']]);
  });

  it('cancels right after marking DRAINING when the cancelDrain update comes first', async () => {
    const marking = blocking(fakeOperator({ status: 'DRAINING' }));
    const stubs = stubActivities({ beginDrain: marking.activity });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle } = await startDrain(taskQueue);
      await marking.entered;
      const update = await handle.startUpdate(cancelDrainUpdate, {
        args: [{ actor: 'ops-admin' }],
        waitForStage: WorkflowUpdateStage.ACCEPTED,
      });
      marking.release();

      expect(await update.result()).toMatchObject({ status: 'ACTIVE' });
      expect(await handle.result()).toMatchObject({ outcome: 'CANCELLED' });
    });
    // Cancelled before `draining` went out: one flush publishes it and `drain_cancelled`, in order.
    expect(stubs.names()).toEqual(['beginDrain', 'recentConnectorReports', 'cancelDrain', 'publishPendingEvents']);
  });

  it('carries out a cancel asked while NATS holds `draining` at once, not once NATS is back', async () => {
    let natsDown = true;
    const announcing = deferred();
    const stubs = stubActivities({
      publishPendingEvents: async () => {
        announcing.resolve();
        if (natsDown) throw ApplicationFailure.retryable('NATS is unavailable', 'NatsDown');
        return 0;
      },
    });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startDrain(taskQueue);
      await accepted;
      await announcing.promise;

      // Answered while NATS is still down: the operator is ACTIVE in PostgreSQL, its event waits.
      expect(await cancelDrain(handle)).toMatchObject({ id: OPERATOR_ID, status: 'ACTIVE', updatedBy: 'ops-admin' });
      expect(await stepOf(handle)).toBe('cancelling');
      natsDown = false;
      expect(await handle.result()).toEqual({ operatorId: OPERATOR_ID, outcome: 'CANCELLED', reason: 'cancelled' });
    });
    const names = stubs.names();
    expect(names.slice(0, 3)).toEqual(['beginDrain', 'recentConnectorReports', 'publishPendingEvents']);
    expect(names.filter((n) => n !== 'publishPendingEvents')).toEqual([
      'beginDrain',
      'recentConnectorReports',
      'cancelDrain',
    ]);
    expect(names[names.length - 1]).toBe('publishPendingEvents');
  });

  it('puts the operator back to ACTIVE and ends cancelled on a Temporal cancel before the soft delete', async () => {
    const stubs = stubActivities();
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startDrain(taskQueue);
      await accepted;
      await waitForStep(handle, drainSteps.query, 'waitingForEmpty');
      await handle.cancel();

      expect(await workflowFailure(handle)).toBeInstanceOf(CancelledFailure);
      expect(await stepOf(handle)).toBe('cancelled');
    });
    expect(stubs.names()).not.toContain('finishDrain');
    expect(stubs.argsOf('cancelDrain')).toEqual([[OPERATOR_ID, 'system:temporal-cancel']]);
    expect(stubs.names().slice(-2)).toEqual(['cancelDrain', 'publishPendingEvents']);
  });

  it('puts the operator back to ACTIVE when cancelled before a worker picks it up', async () => {
    // The API's answer to "no worker took the drain in time". beginDrain is never run, but the
    // workflow cannot know whether an earlier attempt committed: cancelDrain is a no-op if not.
    const taskQueue = uniqueTaskQueue();
    const handle = await env().client.workflow.start(drainOperator, {
      workflowId: `drain-${randomUUID()}`,
      taskQueue,
      args: [input()],
    });
    await handle.cancel();

    const stubs = stubActivities();
    await withWorker(
      env(),
      stubs.activities,
      async () => {
        expect(await workflowFailure(handle)).toBeInstanceOf(CancelledFailure);
        expect(await stepOf(handle)).toBe('cancelled');
      },
      taskQueue,
    );
    expect(stubs.names()).toEqual(['cancelDrain', 'publishPendingEvents']);
    expect(stubs.argsOf('cancelDrain')).toEqual([[OPERATOR_ID, 'system:temporal-cancel']]);
  });

  it('refuses the accepted update when the operator cannot drain', async () => {
    const stubs = stubActivities({ beginDrain: failing(CONFLICT) });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startDrain(taskQueue);

      const refusal = await updateFailure(accepted);
      expect(refusal).toBeInstanceOf(ApplicationFailure);
      expect(refusal).toMatchObject({ type: CONFLICT });
      const failure = await workflowFailure(handle);
      expect(failure).toBeInstanceOf(ActivityFailure);
      expect(failure?.cause).toMatchObject({ type: CONFLICT });
      expect(await stepOf(handle)).toBe('failed');
    });
    expect(stubs.names()).toEqual(['beginDrain']);
  });

  it('answers a cancelDrain update waiting on a refused beginDrain with the refusal', async () => {
    const entered = deferred();
    const marking = deferred();
    const stubs = stubActivities({
      beginDrain: async () => {
        entered.resolve();
        await marking.promise;
        throw ApplicationFailure.nonRetryable('a credential rotation is pending', CONFLICT);
      },
    });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle } = await startDrain(taskQueue);
      await entered.promise;
      const update = await handle.startUpdate(cancelDrainUpdate, {
        args: [{ actor: 'ops-admin' }],
        waitForStage: WorkflowUpdateStage.ACCEPTED,
      });
      marking.resolve();

      expect(await updateFailure(update.result())).toMatchObject({ type: CONFLICT });
      expect(await workflowFailure(handle)).toBeInstanceOf(ActivityFailure);
    });
    expect(stubs.names()).not.toContain('cancelDrain');
  });

  it('refuses a cancelDrain update that names no actor', async () => {
    const stubs = stubActivities();
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startDrain(taskQueue);
      await accepted;
      await waitForStep(handle, drainSteps.query, 'waitingForEmpty');

      expect(await updateFailure(cancelDrain(handle, ''))).toBeInstanceOf(ApplicationFailure);
      // Refused by the validator: the drain goes on as if it never came.
      await handle.signal(connectorHealthSignal, await inflight(0));
      expect(await handle.result()).toMatchObject({ outcome: 'DELETED', reason: 'drained' });
    });
    expect(stubs.names()).not.toContain('cancelDrain');
  });

  it('refuses a cancelDrain update with Conflict once the soft delete has begun', async () => {
    const deleting = blocking(undefined);
    const stubs = stubActivities({ finishDrain: deleting.activity });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const handle = await heldInSoftDelete(taskQueue, deleting);
      expect(await stepOf(handle)).toBe('softDeleting');

      const refusal = await updateFailure(cancelDrain(handle));
      expect(refusal).toBeInstanceOf(ApplicationFailure);
      expect(refusal).toMatchObject({ type: CONFLICT });
      deleting.release();
      expect(await handle.result()).toMatchObject({ outcome: 'DELETED', reason: 'drained' });
    });
    expect(stubs.names()).not.toContain('cancelDrain');
  });

  it('finishes the soft delete when cancelled after it has begun', async () => {
    const deleting = blocking(undefined);
    const stubs = stubActivities({ finishDrain: deleting.activity });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const handle = await heldInSoftDelete(taskQueue, deleting);
      await handle.cancel();
      deleting.release();

      expect(await handle.result()).toEqual({ operatorId: OPERATOR_ID, outcome: 'DELETED', reason: 'drained' });
      expect(await stepOf(handle)).toBe('deleted');
    });
    expect(stubs.names()).not.toContain('cancelDrain');
    expect(stubs.names().slice(-3)).toEqual(['finishDrain', 'forgetHealth', 'publishPendingEvents']);
  });

  it('fails without restoring the operator when the soft delete is refused', async () => {
    const stubs = stubActivities({ finishDrain: failing(CONFLICT) });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startDrain(taskQueue);
      await accepted;
      await waitForStep(handle, drainSteps.query, 'waitingForEmpty');
      await handle.signal(connectorHealthSignal, await inflight(0));

      const failure = await workflowFailure(handle);
      expect(failure).toBeInstanceOf(ActivityFailure);
      expect(failure?.cause).toMatchObject({ type: CONFLICT });
      expect(await stepOf(handle)).toBe('failed');
    });
    expect(stubs.names()).not.toContain('forgetHealth');
    expect(stubs.names()).not.toContain('cancelDrain');
  });

  it('puts the operator back to ACTIVE and fails when a step after marking DRAINING gives up', async () => {
    // PostgreSQL down past the step's retries, say: the operator must not stay DRAINING with no drain.
    const stubs = stubActivities({ recentConnectorReports: failing('Unavailable') });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startDrain(taskQueue);
      await accepted;
      const failure = await workflowFailure(handle);
      expect(failure).toBeInstanceOf(ActivityFailure);
      expect(await stepOf(handle)).toBe('failed');
    });
    expect(stubs.names()).toEqual(['beginDrain', 'recentConnectorReports', 'cancelDrain', 'publishPendingEvents']);
    expect(stubs.argsOf('cancelDrain')).toEqual([[OPERATOR_ID, 'system:drain-failed']]);
  });

  it('puts the operator back to ACTIVE when beginDrain runs out of retries (its commit may have happened)', async () => {
    const stubs = stubActivities({
      beginDrain: async () => {
        throw new Error('PostgreSQL is unavailable');
      },
    });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startDrain(taskQueue);
      // Awaiting the result lets the test server skip the retries' backoff.
      expect(await workflowFailure(handle)).toBeInstanceOf(ActivityFailure);
      // The API's start is answered with the failure too (its commit's answer may have been lost).
      expect(await updateFailure(accepted)).toMatchObject({
        message: expect.stringContaining('PostgreSQL is unavailable'),
      });
    });
    expect(stubs.names().filter((n) => n === 'beginDrain')).toHaveLength(10);
    expect(stubs.names().slice(-2)).toEqual(['cancelDrain', 'publishPendingEvents']);
  });

  it('answers a cancel asked while a step fails with the operator restored, in its actor name', async () => {
    const failNow = deferred();
    const stubs = stubActivities({
      recentConnectorReports: async () => {
        await failNow.promise;
        throw ApplicationFailure.nonRetryable('PostgreSQL is unavailable', 'Unavailable');
      },
    });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startDrain(taskQueue);
      await accepted;
      // Accepted before the step fails, so the restore is the cancel's.
      const cancelled = await handle.startUpdate(cancelDrainUpdate, {
        args: [{ actor: 'ops-admin' }],
        waitForStage: WorkflowUpdateStage.ACCEPTED,
      });
      failNow.resolve();
      expect(await cancelled.result()).toMatchObject({ id: OPERATOR_ID });
      expect(await workflowFailure(handle)).toBeInstanceOf(ActivityFailure);
    });
    expect(stubs.argsOf('cancelDrain')).toEqual([[OPERATOR_ID, 'ops-admin']]);
  });
});
