import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import {
  CREDENTIALS_NOT_STAGED,
  DUPLICATE_OPERATOR,
  ONBOARDING_FAILED,
  VAULT_REJECTED,
} from '../../src/domain/failures';
import { connectorHealthSignal, type ConnectorHealth } from '../../src/workflows/messages';
import {
  onboardOperator,
  onboardingSteps,
  type OnboardingInput,
  type OnboardingStep,
} from '../../src/workflows/onboarding';
import {
  OPERATOR_ID,
  blocking,
  useTimeSkippingEnv,
  errorsLoggedBy,
  failing,
  fakeDraft,
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

const BIND_TIMEOUT_S = 600;
const ACTOR = 'test-admin';
const COMPENSATION = ['markOnboardingFailed', 'discardCredentials', 'publishPendingEvents'];

const input = (): OnboardingInput => ({
  draft: fakeDraft(),
  stagedCredentialsVersion: 3,
  actor: ACTOR,
  bindTimeoutS: BIND_TIMEOUT_S,
});

describe('onboardOperator', () => {
  const env = useTimeSkippingEnv();

  const startOnboarding = (taskQueue: string) => startAccepted(env(), onboardOperator, taskQueue, input());
  /** An onboarding accepted and waiting for its bind, then sent `health` (an UP by default). */
  async function reportedToWaitingOnboarding(taskQueue: string, health: ConnectorHealth = report('UP')) {
    const { handle, accepted } = await startOnboarding(taskQueue);
    await accepted;
    await waitForStep(handle, onboardingSteps.query, 'waitingForBind');
    await handle.signal(connectorHealthSignal, health);
    return handle;
  }

  const stepOf = async (handle: WorkflowHandle): Promise<OnboardingStep> =>
    (await handle.query(onboardingSteps.query)).step;

  it('activates the operator on its first healthy bind', async () => {
    const stubs = stubActivities();
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startOnboarding(taskQueue);
      expect(await accepted).toMatchObject({ id: OPERATOR_ID, status: 'ONBOARDING' });

      await waitForStep(handle, onboardingSteps.query, 'waitingForBind');
      await handle.signal(connectorHealthSignal, report('UP'));

      expect(await handle.result()).toEqual({ operatorId: OPERATOR_ID, status: 'ACTIVE', credentialsVersion: 1 });
      expect(await stepOf(handle)).toBe('active');
    });
    expect(stubs.names()).toEqual([
      'saveOperator',
      'storeCredentials',
      'recordOperatorCreated',
      'publishPendingEvents',
      'activateOperator',
      'publishPendingEvents',
    ]);
    // The staged version goes to Vault; the version Vault answers is the one announced.
    expect(stubs.argsOf('storeCredentials')).toEqual([[OPERATOR_ID, 3]]);
    expect(stubs.argsOf('recordOperatorCreated')).toEqual([[OPERATOR_ID, 1, ACTOR]]);
  });

  it('waits out a dependency down at activation instead of compensating after the bind', async () => {
    // Eleven failures: more than a step's ten attempts.
    let failures = 0;
    const stubs = stubActivities({
      activateOperator: async () => {
        if (failures++ < 11) throw new Error('PostgreSQL is unavailable');
        return fakeOperator({ status: 'ACTIVE' });
      },
    });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const handle = await reportedToWaitingOnboarding(taskQueue);
      expect(await handle.result()).toEqual({ operatorId: OPERATOR_ID, status: 'ACTIVE', credentialsVersion: 1 });
    });
    expect(failures).toBe(12);
    expect(stubs.names()).not.toContain('markOnboardingFailed');
    expect(stubs.names()).not.toContain('discardCredentials');
  });

  it('keeps a healthy report that arrives before it starts waiting for the bind', async () => {
    // The announcement is held, so the report certainly arrives before the wait begins.
    const announcing = blocking(fakeOperator({ status: 'ONBOARDING', version: 1, credentialsVersion: 1 }));
    const stubs = stubActivities({ recordOperatorCreated: announcing.activity });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startOnboarding(taskQueue);
      await accepted;
      await announcing.entered;
      await handle.signal(connectorHealthSignal, report('UP'));
      expect(await stepOf(handle)).toBe('announcing');
      announcing.release();

      expect(await handle.result()).toMatchObject({ status: 'ACTIVE' });
    });
    expect(stubs.names()).toContain('activateOperator');
  });

  // Both reports are in before the workflow looks (the announcement is held meanwhile); UP must win.
  it.each([
    {
      // Two ingestion batches in flight: the newer report's signal overtakes the older one's.
      when: 'the newest report decides when an older one arrives after it',
      arrivals: [
        report('UP', 1, 0, { reportedAt: '2026-01-01T00:00:02.000Z' }),
        report('AUTH_FAILED', 1, 0, { reportedAt: '2026-01-01T00:00:01.000Z' }),
      ],
    },
    {
      // As before the reportedAt rule: of two reports with one reportedAt, arrival order decides.
      when: 'the last to arrive decides between reports made at the same instant',
      arrivals: [
        report('AUTH_FAILED', 1, 0, { reportedAt: '2026-01-01T00:00:01.000Z' }),
        report('UP', 1, 0, { reportedAt: '2026-01-01T00:00:01.000Z' }),
      ],
    },
  ])('$when', async ({ arrivals }) => {
    const announcing = blocking(fakeOperator({ status: 'ONBOARDING', version: 1, credentialsVersion: 1 }));
    const stubs = stubActivities({ recordOperatorCreated: announcing.activity });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startOnboarding(taskQueue);
      await accepted;
      await announcing.entered;
      for (const health of arrivals) await handle.signal(connectorHealthSignal, health);
      announcing.release();

      expect(await handle.result()).toMatchObject({ status: 'ACTIVE' });
    });
    expect(stubs.names()).toContain('activateOperator');
  });

  it('fails and compensates when the connector does not bind within bindTimeoutS', async () => {
    const stubs = stubActivities();
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startOnboarding(taskQueue);
      await accepted;
      await waitForStep(handle, onboardingSteps.query, 'waitingForBind');
      // Neither is a bind: the wait goes on.
      await handle.signal(connectorHealthSignal, report('DOWN'));
      await handle.signal(connectorHealthSignal, report('DEGRADED'));

      const before = await env().currentTimeMs();
      expect(await workflowFailure(handle)).toMatchObject({ type: ONBOARDING_FAILED });
      expect((await env().currentTimeMs()) - before).toBeGreaterThanOrEqual(BIND_TIMEOUT_S * 1000);
      expect(await stepOf(handle)).toBe('failed');
    });
    expect(stubs.names()).not.toContain('activateOperator');
    expect(stubs.names().slice(-3)).toEqual(COMPENSATION);
  });

  it('fails and compensates when the connector reports AUTH_FAILED', async () => {
    const stubs = stubActivities();
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const handle = await reportedToWaitingOnboarding(taskQueue, report('AUTH_FAILED'));

      expect(await workflowFailure(handle)).toMatchObject({ type: ONBOARDING_FAILED });
      expect(await stepOf(handle)).toBe('failed');
    });
    expect(stubs.names()).not.toContain('activateOperator');
    expect(stubs.names().slice(-3)).toEqual(COMPENSATION);
    expect(stubs.argsOf('markOnboardingFailed')[0]?.[0]).toBe(OPERATOR_ID);
  });

  it('refuses the accepted update and fails with DuplicateOperator when the save is refused', async () => {
    const duplicate = ApplicationFailure.create({
      message: 'an operator with this host, port and systemId exists',
      type: DUPLICATE_OPERATOR,
      nonRetryable: true,
      details: [{ existingOperatorId: 'op-other' }],
    });
    const stubs = stubActivities({
      saveOperator: async () => {
        throw duplicate;
      },
      // Nothing was saved: the real activity finds no operator.
      markOnboardingFailed: async () => null,
    });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startOnboarding(taskQueue);

      const refusal = await updateFailure(accepted);
      expect(refusal).toBeInstanceOf(ApplicationFailure);
      // The API answers 409 with the holder's id from these details.
      expect(refusal).toMatchObject({ type: DUPLICATE_OPERATOR, details: [{ existingOperatorId: 'op-other' }] });
      expect(await workflowFailure(handle)).toMatchObject({ type: DUPLICATE_OPERATOR });
      expect(await stepOf(handle)).toBe('rejected');
    });
    expect(stubs.names()).not.toContain('storeCredentials');
    // The staged password is discarded even though no operator exists.
    expect(stubs.names()).toEqual(['saveOperator', ...COMPENSATION]);
  });

  it('compensates when a step after the save fails', async () => {
    const stubs = stubActivities({ storeCredentials: failing(CREDENTIALS_NOT_STAGED) });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startOnboarding(taskQueue);
      // Already answered by the save: the later failure does not turn it into a refusal.
      expect(await accepted).toMatchObject({ status: 'ONBOARDING' });

      expect(await workflowFailure(handle)).toMatchObject({ type: ONBOARDING_FAILED });
      expect(await stepOf(handle)).toBe('failed');
    });
    expect(stubs.names()).toEqual(['saveOperator', 'storeCredentials', ...COMPENSATION]);
  });

  it('compensates and ends cancelled when cancelled while waiting for the bind', async () => {
    const stubs = stubActivities();
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startOnboarding(taskQueue);
      await accepted;
      await waitForStep(handle, onboardingSteps.query, 'waitingForBind');
      await handle.cancel();

      expect(await workflowFailure(handle)).toBeInstanceOf(CancelledFailure);
      expect(await stepOf(handle)).toBe('failed');
    });
    expect(stubs.names()).not.toContain('activateOperator');
    expect(stubs.names().slice(-3)).toEqual(COMPENSATION);
  });

  it('compensates without saving when cancelled before a worker picks it up', async () => {
    // The API's answer to "no worker took the onboarding in time".
    const taskQueue = uniqueTaskQueue();
    const handle = await env().client.workflow.start(onboardOperator, {
      workflowId: `onboarding-${randomUUID()}`,
      taskQueue,
      args: [input()],
    });
    await handle.cancel();

    const stubs = stubActivities({ markOnboardingFailed: async () => null });
    await withWorker(
      env(),
      stubs.activities,
      async () => {
        expect(await workflowFailure(handle)).toBeInstanceOf(CancelledFailure);
        expect(await stepOf(handle)).toBe('rejected');
      },
      taskQueue,
    );
    // A save may have committed although its answer was lost: the compensation runs regardless.
    expect(stubs.names()).toEqual(COMPENSATION);
  });

  // Activation committed but its answer was lost; since then the operator may have been drained
  // or deleted by an admin. The secret is the live operator's: it is kept.
  it.each(['ACTIVE', 'DRAINING', 'DELETED'] as const)(
    'ends ACTIVE without discarding the credentials when compensation finds the operator %s',
    async (status) => {
      const stubs = stubActivities({
        activateOperator: failing('ActivationReplyLost'),
        markOnboardingFailed: async (operatorId) => fakeOperator({ id: operatorId, status, credentialsVersion: 5 }),
      });
      await withWorker(env(), stubs.activities, async (taskQueue) => {
        const handle = await reportedToWaitingOnboarding(taskQueue);

        expect(await handle.result()).toEqual({ operatorId: OPERATOR_ID, status: 'ACTIVE', credentialsVersion: 5 });
        expect(await stepOf(handle)).toBe('active');
      });
      expect(stubs.names()).not.toContain('discardCredentials');
      expect(stubs.names().slice(-3)).toEqual(['activateOperator', 'markOnboardingFailed', 'publishPendingEvents']);
    },
  );

  it('fails without discarding the credentials when compensation finds it ACTIVE with no credentials version', async () => {
    const stubs = stubActivities({
      activateOperator: failing('ActivationReplyLost'),
      markOnboardingFailed: async (operatorId) => fakeOperator({ id: operatorId, credentialsVersion: null }),
    });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const handle = await reportedToWaitingOnboarding(taskQueue);

      expect(await workflowFailure(handle)).toMatchObject({ type: ONBOARDING_FAILED });
      expect(await stepOf(handle)).toBe('failed');
    });
    expect(stubs.names()).not.toContain('discardCredentials');
  });

  it('logs a refused discard and still finishes the compensation', async () => {
    const stubs = stubActivities({ discardCredentials: failing(VAULT_REJECTED) });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const handle = await reportedToWaitingOnboarding(taskQueue, report('AUTH_FAILED'));

      expect(await workflowFailure(handle)).toMatchObject({ type: ONBOARDING_FAILED });
      expect(await stepOf(handle)).toBe('failed');
      expect(errorsLoggedBy(handle.workflowId)).toContainEqual(
        expect.objectContaining({ meta: expect.objectContaining({ operatorId: OPERATOR_ID }) }),
      );
    });
    expect(stubs.names().slice(-3)).toEqual(COMPENSATION);
  });
});
