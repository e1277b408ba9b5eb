import { ApplicationFailure, CancellationScope, condition, isCancellation, setHandler } from '@temporalio/workflow';
import { newestReport } from '../domain/health';
import { connectorHealthSignal, defineSteps, type ConnectorHealth, type StepOf } from './messages';
import { events, steps, untilDone } from './proxies';
import {
  acceptOnFirstStep,
  bestEffort,
  failureReason,
  handlersDone,
  healthByReportedAt,
  rotationCleanupBestEffort,
  trackSteps,
} from './shared';

/** The failure type of a rotation that ended with the previous credentials version in force. */
export const CREDENTIALS_ROLLED_BACK = 'CredentialsRolledBack';

export interface RotationInput {
  operatorId: string;
  /** The Vault version of the staged new password: a reference, never the password. */
  stagedVersion: number;
  /** The request's own staging entry (stagedRotationPath); none in runs started before keys. */
  stagingKey?: string;
  actor: string;
  bindTimeoutS: number;
}

export interface RotationResult {
  operatorId: string;
  status: 'ROTATED';
  credentialsVersion: number;
}

/** The rotation's steps, in order, with the words the Temporal UI shows for each. */
export const rotationSteps = defineSteps({
  checking: 'checking the operator',
  writingVault: 'writing the new credentials version to Vault',
  announcing: 'announcing the new credentials version',
  waitingForBind: 'waiting for the connector to bind with the new credentials version',
  makingCurrent: 'making the new credentials version current',
  rotated: 'done: new credentials version current',
  rollingBack: 'rolling back',
  rolledBack: 'done: rolled back to the previous credentials version',
  rejected: 'rejected: the operator cannot rotate now',
});
export type RotationStep = StepOf<typeof rotationSteps>;

/**
 * Credential rotation (README "Credential rotation, step by step"): write the staged password as
 * a new Vault version (check-and-set), announce it as pending, wait for the connector to bind
 * with it, then make it current. On AUTH_FAILED, a timeout, a failed step or a cancellation, the
 * previous version stays current: Vault's latest version holds its password again and
 * `credentials_rolled_back` goes out.
 */
export async function rotateCredentials(input: RotationInput): Promise<RotationResult> {
  const { operatorId, actor, bindTimeoutS } = input;
  const at = trackSteps(rotationSteps, 'checking');
  const acceptance = acceptOnFirstStep();
  // One decisive report per credentials version: of those in when the workflow looks, the newest
  // by reportedAt (as onboarding; the health worker too forwards only an instance's newest report
  // of a batch), the first to arrive on a tie; reports of other versions are ignored.
  const binds = new Map<number, Pick<ConnectorHealth, 'status' | 'reportedAt'>>();
  const byReportedAt = healthByReportedAt();
  setHandler(connectorHealthSignal, (health) => {
    const version = health.credentialsVersion;
    if (version === null || (health.status !== 'UP' && health.status !== 'AUTH_FAILED')) return;
    const held = binds.get(version);
    const arriving = { status: health.status, reportedAt: health.reportedAt };
    binds.set(version, byReportedAt ? newestReport(held, arriving, 'first') : (held ?? arriving));
  });

  let previousVersion: number | undefined;
  let baseVersion: number | undefined;
  let newVersion: number | undefined;
  try {
    try {
      at('checking');
      previousVersion =
        (await acceptance.first(() => steps.prepareRotation(operatorId))).credentialsVersion ?? undefined;

      at('writingVault');
      baseVersion = await steps.latestCredentialsVersion(operatorId);
      newVersion = await steps.promoteStagedCredentials(operatorId, input.stagedVersion, baseVersion, input.stagingKey);
      const pending = newVersion;

      at('announcing', `version ${pending}`);
      await steps.beginRotation(operatorId, pending, actor);
      await events.publishPendingEvents();

      at('waitingForBind', `version ${pending}, up to ${bindTimeoutS}s`);
      const reported = await condition(() => binds.has(pending), `${bindTimeoutS}s`);
      if (!reported) {
        throw ApplicationFailure.nonRetryable(
          `the connector did not bind with credentials version ${pending} within ${bindTimeoutS}s`,
          CREDENTIALS_ROLLED_BACK,
        );
      }
      if (binds.get(pending)?.status === 'AUTH_FAILED') {
        throw ApplicationFailure.nonRetryable(
          `the connector reported AUTH_FAILED with credentials version ${pending}`,
          CREDENTIALS_ROLLED_BACK,
        );
      }

      // The connector runs on the new password now: a late cancel must not undo that.
      at('makingCurrent', `version ${pending}`);
      await CancellationScope.nonCancellable(async () => {
        await untilDone.completeRotation(operatorId, pending, actor);
        await events.publishPendingEvents();
      });
      at('rotated', `version ${pending}`);
      return { operatorId, status: 'ROTATED', credentialsVersion: pending };
    } catch (err) {
      const reason = failureReason(err);
      acceptance.refuse(err, CREDENTIALS_ROLLED_BACK);
      if (previousVersion === undefined && !isCancellation(err)) {
        // Refused by the check before anything was written or announced: nothing to roll back.
        at('rejected', reason);
        throw ApplicationFailure.nonRetryable(reason, acceptance.refusal?.type ?? CREDENTIALS_ROLLED_BACK);
      }
      at('rollingBack', reason);
      const current = await CancellationScope.nonCancellable(() => rollback(operatorId, reason, actor, baseVersion));
      if (newVersion !== undefined && current === newVersion) {
        // Completion had committed before the failure: the rotation did happen.
        at('rotated', `version ${newVersion}`);
        return { operatorId, status: 'ROTATED', credentialsVersion: newVersion };
      }
      at('rolledBack', `version ${current ?? previousVersion ?? 'unknown'}: ${reason}`);
      if (isCancellation(err)) throw err;
      throw ApplicationFailure.nonRetryable(reason, CREDENTIALS_ROLLED_BACK);
    }
  } finally {
    // Normally cleared by the promotion already; this catches a rotation that never got there.
    // Best effort: the rotation's outcome is decided, and the staging sweep takes what is left.
    const discard = () => untilDone.discardStagedRotation(operatorId, input.stagingKey);
    await CancellationScope.nonCancellable(() =>
      rotationCleanupBestEffort() ? bestEffort('discard the staged rotation entry', operatorId, discard) : discard(),
    );
    await handlersDone();
  }
}

/**
 * PostgreSQL first: it says which version is current (a completion that committed wins), and
 * clearing the pending version stops anyone from being offered the rejected one. Then Vault's
 * latest version gets the previous password back. Returns the current credentials version.
 */
async function rollback(
  operatorId: string,
  reason: string,
  actor: string,
  baseVersion: number | undefined,
): Promise<number | null> {
  const after = await untilDone.rollbackRotation(operatorId, reason, actor);
  const current = after?.credentialsVersion ?? null;
  // Nothing to restore before the promotion's base was read, or when the new version is current.
  if (current !== null && baseVersion !== undefined && current <= baseVersion) {
    await bestEffort('restore the previous credentials in Vault', operatorId, () =>
      untilDone.restoreCredentials(operatorId, current, baseVersion),
    );
  }
  await events.publishPendingEvents();
  return current;
}
