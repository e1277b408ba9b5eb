import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  setHandler,
} from '@temporalio/workflow';
import { events, failureReason, steps, handlersDone, trackSteps, untilDone } from './shared';
import type { Operator, OperatorDraft } from '../domain/operator';
import { ONBOARDING_FAILED } from '../domain/failures';
import { connectorHealthSignal, operatorSavedUpdate, type ConnectorHealth } from './messages';

export interface OnboardingInput {
  draft: OperatorDraft;
  /** The Vault version of the staged password: a reference, never the password. */
  stagedCredentialsVersion: number;
  actor: string;
  bindTimeoutS: number;
}

export interface OnboardingResult {
  operatorId: string;
  status: 'ACTIVE';
  credentialsVersion: number;
}

/**
 * SPEC §5 onboarding: save, store credentials, announce, wait for the connector's first healthy
 * bind, activate. Any failure (or cancellation) discards the secret and ends ONBOARDING_FAILED.
 */
export async function onboardOperator(input: OnboardingInput): Promise<OnboardingResult> {
  const { draft, actor } = input;
  let saved: Operator | undefined;
  let rejected: ApplicationFailure | undefined;
  let lastHealth: ConnectorHealth | undefined;
  const at = trackSteps('saving operator');

  setHandler(operatorSavedUpdate, async () => {
    await condition(() => saved !== undefined || rejected !== undefined);
    if (rejected) throw rejected;
    return saved as Operator;
  });
  setHandler(connectorHealthSignal, (health) => {
    lastHealth = health;
  });

  try {
    at('saving operator');
    try {
      saved = await steps.saveOperator(draft, actor);
    } catch (err) {
      rejected =
        err instanceof ActivityFailure && err.cause instanceof ApplicationFailure
          ? err.cause
          : ApplicationFailure.nonRetryable(failureReason(err));
      throw err;
    }

    at('storing credentials in Vault');
    const credentialsVersion = await steps.storeCredentials(draft.id, input.stagedCredentialsVersion);

    at('announcing operator');
    await steps.recordOperatorCreated(draft.id, credentialsVersion, actor);
    await events.publishPendingEvents();

    at(`waiting up to ${input.bindTimeoutS}s for the connector's first healthy bind`);
    const bound = await condition(
      () => lastHealth?.status === 'UP' || lastHealth?.status === 'AUTH_FAILED',
      `${input.bindTimeoutS}s`,
    );
    if (!bound) {
      throw ApplicationFailure.nonRetryable(
        `the connector did not bind within ${input.bindTimeoutS}s`,
        ONBOARDING_FAILED,
      );
    }
    if (lastHealth?.status === 'AUTH_FAILED') {
      throw ApplicationFailure.nonRetryable(
        'the connector reported AUTH_FAILED with the new credentials',
        ONBOARDING_FAILED,
      );
    }

    at('activating operator');
    await steps.activateOperator(draft.id, actor);
    await events.publishPendingEvents();
    at('done: ACTIVE');
    await handlersDone();
    return { operatorId: draft.id, status: 'ACTIVE', credentialsVersion };
  } catch (err) {
    const reason = failureReason(err);
    // An update still waiting for the save must get its answer before the workflow closes.
    rejected ??= ApplicationFailure.nonRetryable(reason, ONBOARDING_FAILED);
    at(`compensating: ${reason}`);
    const outcome = await CancellationScope.nonCancellable(() => compensate(draft.id, reason, actor));
    if (outcome.status === 'ACTIVE' && outcome.credentialsVersion !== null) {
      // Activation had already committed: the operator is live, so the onboarding succeeded.
      at('done: ACTIVE');
      await handlersDone();
      return { operatorId: draft.id, status: 'ACTIVE', credentialsVersion: outcome.credentialsVersion };
    }
    at(saved ? `ONBOARDING_FAILED: ${reason}` : `rejected: ${reason}`);
    await handlersDone();
    if (isCancellation(err)) throw err;
    throw ApplicationFailure.nonRetryable(reason, rejected.type ?? ONBOARDING_FAILED);
  }
}

/**
 * Marks the operator failed first (that frees its endpoint), then discards its secret unless the
 * operator turned out to be ACTIVE. Runs even when nothing was saved: a save may have committed
 * although its reply was lost. A refused discard is logged, not allowed to skip the rest.
 */
async function compensate(
  operatorId: string,
  reason: string,
  actor: string,
): Promise<{ status: string | null; credentialsVersion: number | null }> {
  const after = await untilDone.markOnboardingFailed(operatorId, reason, actor);
  if (after?.status !== 'ACTIVE') {
    try {
      await untilDone.discardCredentials(operatorId);
    } catch (err) {
      log.error('could not discard the credentials of a failed onboarding', { operatorId, reason: failureReason(err) });
    }
  }
  await events.publishPendingEvents();
  return { status: after?.status ?? null, credentialsVersion: after?.credentialsVersion ?? null };
}
