import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { CONFLICT, NOT_FOUND, VAULT_REJECTED } from '../../src/domain/failures';
import { connectorHealthSignal, type ConnectorHealth } from '../../src/workflows/messages';
import {
  CREDENTIALS_ROLLED_BACK,
  rotateCredentials,
  rotationSteps,
  type RotationInput,
  type RotationStep,
} from '../../src/workflows/rotation';
import {
  OPERATOR_ID,
  blocking,
  useTimeSkippingEnv,
  errorsLoggedBy,
  failing,
  fakeOperator,
  report,
  startAccepted,
  stubActivities,
  updateFailure,
  waitForStep,
  withWorker,
  workflowFailure,
} from '../support/time-skipping';

const BIND_TIMEOUT_S = 600;
const ACTOR = 'test-admin';
// The stubs' operator has credentials version 1 in force and Vault's latest is 1: the rotation writes 2.
const CURRENT = 1;
const NEW = 2;
const ROLLBACK = ['rollbackRotation', 'restoreCredentials', 'publishPendingEvents', 'discardStagedRotation'];

const input = (): RotationInput => ({
  operatorId: OPERATOR_ID,
  stagedVersion: 7,
  actor: ACTOR,
  bindTimeoutS: BIND_TIMEOUT_S,
});

describe('rotateCredentials', () => {
  const env = useTimeSkippingEnv();

  const startRotation = (taskQueue: string) => startAccepted(env(), rotateCredentials, taskQueue, input());
  const stepOf = async (handle: WorkflowHandle): Promise<RotationStep> =>
    (await handle.query(rotationSteps.query)).step;

  /** A rotation started, accepted and waiting for the bind, sent `health`. */
  async function reportedToWaitingRotation(taskQueue: string, health: ConnectorHealth): Promise<WorkflowHandle> {
    const { handle, accepted } = await startRotation(taskQueue);
    await accepted;
    await waitForStep(handle, rotationSteps.query, 'waitingForBind');
    await handle.signal(connectorHealthSignal, health);
    return handle;
  }

  it('makes the new version current once the connector binds with it', async () => {
    const stubs = stubActivities();
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startRotation(taskQueue);
      expect(await accepted).toMatchObject({ id: OPERATOR_ID, status: 'ACTIVE', credentialsVersion: CURRENT });

      await waitForStep(handle, rotationSteps.query, 'waitingForBind');
      await handle.signal(connectorHealthSignal, report('UP', NEW));

      expect(await handle.result()).toEqual({ operatorId: OPERATOR_ID, status: 'ROTATED', credentialsVersion: NEW });
      expect(await stepOf(handle)).toBe('rotated');
    });
    expect(stubs.names()).toEqual([
      'prepareRotation',
      'latestCredentialsVersion',
      'promoteStagedCredentials',
      'beginRotation',
      'publishPendingEvents',
      'completeRotation',
      'publishPendingEvents',
      'discardStagedRotation',
    ]);
    // Check-and-set on the version read just before: the staged version becomes version 2.
    expect(stubs.argsOf('promoteStagedCredentials')).toEqual([[OPERATOR_ID, 7, CURRENT]]);
    expect(stubs.argsOf('beginRotation')).toEqual([[OPERATOR_ID, NEW, ACTOR]]);
    expect(stubs.argsOf('completeRotation')).toEqual([[OPERATOR_ID, NEW, ACTOR]]);
  });

  it('rolls back when the connector reports AUTH_FAILED with the new version', async () => {
    const stubs = stubActivities();
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const handle = await reportedToWaitingRotation(taskQueue, report('AUTH_FAILED', NEW));

      expect(await workflowFailure(handle)).toMatchObject({ type: CREDENTIALS_ROLLED_BACK });
      expect(await stepOf(handle)).toBe('rolledBack');
    });
    expect(stubs.names()).not.toContain('completeRotation');
    expect(stubs.names().slice(-4)).toEqual(ROLLBACK);
    // Vault's latest version gets the password of the version still current back.
    expect(stubs.argsOf('restoreCredentials')).toEqual([[OPERATOR_ID, CURRENT, CURRENT]]);
  });

  it('rolls back when the connector does not bind within bindTimeoutS', async () => {
    const stubs = stubActivities();
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startRotation(taskQueue);
      await accepted;
      await waitForStep(handle, rotationSteps.query, 'waitingForBind');

      const before = await env().currentTimeMs();
      expect(await workflowFailure(handle)).toMatchObject({ type: CREDENTIALS_ROLLED_BACK });
      expect((await env().currentTimeMs()) - before).toBeGreaterThanOrEqual(BIND_TIMEOUT_S * 1000);
      expect(await stepOf(handle)).toBe('rolledBack');
    });
    expect(stubs.names()).not.toContain('completeRotation');
    expect(stubs.names().slice(-4)).toEqual(ROLLBACK);
  });

  it('ignores reports that are not a bind with the new version', async () => {
    const stubs = stubActivities();
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startRotation(taskQueue);
      await accepted;
      await waitForStep(handle, rotationSteps.query, 'waitingForBind');
      // Healthy, but on the old password, on no known version, or not bound.
      await handle.signal(connectorHealthSignal, report('UP', CURRENT));
      await handle.signal(connectorHealthSignal, report('UP', null));
      await handle.signal(connectorHealthSignal, report('DEGRADED', NEW));

      expect(await workflowFailure(handle)).toMatchObject({ type: CREDENTIALS_ROLLED_BACK });
    });
    expect(stubs.names()).not.toContain('completeRotation');
  });

  /** A rotation given `reports` while its announcement is held: all are in before it looks at them. */
  async function rotationGiven(reports: ConnectorHealth[], check: (handle: WorkflowHandle) => Promise<void>) {
    const announcing = blocking(fakeOperator());
    const stubs = stubActivities({ beginRotation: announcing.activity });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startRotation(taskQueue);
      await accepted;
      await announcing.entered;
      for (const health of reports) await handle.signal(connectorHealthSignal, health);
      announcing.release();
      await check(handle);
    });
    return stubs;
  }

  it('keeps the first decisive report of the new version on a tie and ignores other versions', async () => {
    const reports = [report('AUTH_FAILED', CURRENT), report('UP', NEW), report('AUTH_FAILED', NEW)];
    const stubs = await rotationGiven(reports, async (handle) => {
      expect(await handle.result()).toMatchObject({ status: 'ROTATED', credentialsVersion: NEW });
    });
    expect(stubs.names()).toContain('completeRotation');
    expect(stubs.names()).not.toContain('rollbackRotation');
  });

  it('lets the newest decisive report decide, whatever order the reports arrive in', async () => {
    // Both in before the workflow looks: first-come would roll back, the newest report is UP.
    const reports = [
      report('AUTH_FAILED', NEW, 0, { reportedAt: '2026-01-01T00:00:01.000Z' }),
      report('UP', NEW, 0, { reportedAt: '2026-01-01T00:00:03.000Z' }),
      // Two ingestion batches in flight: an older report's signal comes last.
      report('AUTH_FAILED', NEW, 0, { reportedAt: '2026-01-01T00:00:02.000Z' }),
    ];
    const stubs = await rotationGiven(reports, async (handle) => {
      expect(await handle.result()).toMatchObject({ status: 'ROTATED', credentialsVersion: NEW });
    });
    expect(stubs.names()).toContain('completeRotation');
    expect(stubs.names()).not.toContain('rollbackRotation');
  });

  it('refuses the accepted update without touching Vault when the operator cannot rotate', async () => {
    const stubs = stubActivities({ prepareRotation: failing(CONFLICT) });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startRotation(taskQueue);

      const refusal = await updateFailure(accepted);
      expect(refusal).toBeInstanceOf(ApplicationFailure);
      expect(refusal).toMatchObject({ type: CONFLICT });
      expect(await workflowFailure(handle)).toMatchObject({ type: CONFLICT });
      expect(await stepOf(handle)).toBe('rejected');
    });
    // Nothing was written or announced, so nothing is rolled back; the refused request's staging goes.
    expect(stubs.names()).toEqual(['prepareRotation', 'discardStagedRotation']);
  });

  it('rolls back without restoring Vault when the base version cannot be read', async () => {
    const stubs = stubActivities({ latestCredentialsVersion: failing(NOT_FOUND) });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startRotation(taskQueue);
      // Answered by prepareRotation already: the later failure does not refuse it.
      expect(await accepted).toMatchObject({ status: 'ACTIVE' });

      expect(await workflowFailure(handle)).toMatchObject({ type: CREDENTIALS_ROLLED_BACK });
      expect(await stepOf(handle)).toBe('rolledBack');
    });
    expect(stubs.names()).not.toContain('promoteStagedCredentials');
    expect(stubs.names()).not.toContain('restoreCredentials');
    expect(stubs.names().slice(-3)).toEqual(['rollbackRotation', 'publishPendingEvents', 'discardStagedRotation']);
  });

  it('rolls back and restores Vault when writing the new version fails', async () => {
    const stubs = stubActivities({ promoteStagedCredentials: failing(CONFLICT) });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startRotation(taskQueue);
      await accepted;

      expect(await workflowFailure(handle)).toMatchObject({ type: CREDENTIALS_ROLLED_BACK });
      expect(await stepOf(handle)).toBe('rolledBack');
    });
    expect(stubs.names()).not.toContain('beginRotation');
    // The write may have landed although its answer was lost.
    expect(stubs.names().slice(-4)).toEqual(ROLLBACK);
    expect(stubs.argsOf('restoreCredentials')).toEqual([[OPERATOR_ID, CURRENT, CURRENT]]);
  });

  it('rolls back and ends cancelled when cancelled while waiting for the bind', async () => {
    const stubs = stubActivities();
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const { handle, accepted } = await startRotation(taskQueue);
      await accepted;
      await waitForStep(handle, rotationSteps.query, 'waitingForBind');
      await handle.cancel();

      expect(await workflowFailure(handle)).toBeInstanceOf(CancelledFailure);
      expect(await stepOf(handle)).toBe('rolledBack');
    });
    expect(stubs.names()).not.toContain('completeRotation');
    expect(stubs.names().slice(-4)).toEqual(ROLLBACK);
  });

  it('ends ROTATED when the rollback finds the new version already current', async () => {
    const stubs = stubActivities({
      // Completion committed, but its answer was lost.
      completeRotation: failing('CompletionReplyLost'),
      rollbackRotation: async (operatorId) => fakeOperator({ id: operatorId, credentialsVersion: NEW }),
    });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const handle = await reportedToWaitingRotation(taskQueue, report('UP', NEW));

      expect(await handle.result()).toEqual({ operatorId: OPERATOR_ID, status: 'ROTATED', credentialsVersion: NEW });
      expect(await stepOf(handle)).toBe('rotated');
    });
    // The connector runs on the new password: Vault must not get the old one back.
    expect(stubs.names()).not.toContain('restoreCredentials');
    expect(stubs.names().slice(-3)).toEqual(['rollbackRotation', 'publishPendingEvents', 'discardStagedRotation']);
  });

  it('rolls back without restoring Vault when the operator is gone', async () => {
    const stubs = stubActivities({ rollbackRotation: async () => null });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const handle = await reportedToWaitingRotation(taskQueue, report('AUTH_FAILED', NEW));

      expect(await workflowFailure(handle)).toMatchObject({ type: CREDENTIALS_ROLLED_BACK });
      expect(await stepOf(handle)).toBe('rolledBack');
    });
    expect(stubs.names()).not.toContain('restoreCredentials');
    expect(stubs.names().slice(-3)).toEqual(['rollbackRotation', 'publishPendingEvents', 'discardStagedRotation']);
  });

  it('logs a refused restore and still finishes the rollback', async () => {
    const stubs = stubActivities({ restoreCredentials: failing(VAULT_REJECTED) });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const handle = await reportedToWaitingRotation(taskQueue, report('AUTH_FAILED', NEW));

      expect(await workflowFailure(handle)).toMatchObject({ type: CREDENTIALS_ROLLED_BACK });
      expect(errorsLoggedBy(handle.workflowId)).toContainEqual(
        expect.objectContaining({ meta: expect.objectContaining({ operatorId: OPERATOR_ID }) }),
      );
    });
    expect(stubs.names().slice(-4)).toEqual(ROLLBACK);
  });

  it('ends ROTATED when cancelled while making the new version current', async () => {
    const completing = blocking(fakeOperator({ credentialsVersion: NEW }));
    const stubs = stubActivities({ completeRotation: completing.activity });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const handle = await reportedToWaitingRotation(taskQueue, report('UP', NEW));
      await completing.entered;
      await handle.cancel();
      completing.release();

      expect(await handle.result()).toEqual({ operatorId: OPERATOR_ID, status: 'ROTATED', credentialsVersion: NEW });
      expect(await stepOf(handle)).toBe('rotated');
    });
    expect(stubs.names()).not.toContain('rollbackRotation');
    expect(stubs.names().slice(-3)).toEqual(['completeRotation', 'publishPendingEvents', 'discardStagedRotation']);
  });

  it('ends ROTATED when Vault refuses the last clean-up of its staged entry', async () => {
    const stubs = stubActivities({ discardStagedRotation: failing(VAULT_REJECTED) });
    await withWorker(env(), stubs.activities, async (taskQueue) => {
      const handle = await reportedToWaitingRotation(taskQueue, report('UP', NEW));
      expect(await handle.result()).toEqual({ operatorId: OPERATOR_ID, status: 'ROTATED', credentialsVersion: NEW });
    });
    expect(stubs.names().at(-1)).toBe('discardStagedRotation');
  });
});
