import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import type { Operator, OperatorDraft } from '../domain/operator';
import { ONBOARDING_FAILED } from '../domain/failures';
import { connectorHealthSignal, currentStepQuery, operatorSavedUpdate, type ConnectorHealth } from './messages';

type Activities = activities.Activities;

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

// Onboarding gives up on an unreachable dependency after a few minutes and compensates.
const steps = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 10 },
});
// Events already committed to the outbox: publishing waits out a NATS outage instead of failing.
const events = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});
// Compensations must finish, however long a dependency is down.
const compensations = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
});

/**
 * SPEC §5 onboarding: save, store credentials, announce, wait for the connector's first healthy
 * bind, activate. Any failure (or cancellation) discards the secret and ends ONBOARDING_FAILED.
 */
export async function onboardOperator(input: OnboardingInput): Promise<OnboardingResult> {
  const { draft, actor } = input;
  let saved: Operator | undefined;
  let rejected: ApplicationFailure | undefined;
  let lastHealth: ConnectorHealth | undefined;
  let step = 'saving operator';
  const at = (s: string) => {
    step = s;
    setCurrentDetails(s);
  };

  setHandler(operatorSavedUpdate, async () => {
    await condition(() => saved !== undefined || rejected !== undefined);
    if (rejected) throw rejected;
    return saved as Operator;
  });
  setHandler(connectorHealthSignal, (health) => {
    lastHealth = health;
  });
  setHandler(currentStepQuery, () => step);

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
    await condition(allHandlersFinished);
    return { operatorId: draft.id, status: 'ACTIVE', credentialsVersion };
  } catch (err) {
    const reason = failureReason(err);
    // An update still waiting for the save must get its answer before the workflow closes.
    rejected ??= ApplicationFailure.nonRetryable(reason, ONBOARDING_FAILED);
    at(`compensating: ${reason}`);
    // Both run even when `saved` is unset: a cancelled saveOperator may still have committed.
    await CancellationScope.nonCancellable(async () => {
      await compensations.discardCredentials(draft.id);
      await compensations.markOnboardingFailed(draft.id, reason, actor);
      await events.publishPendingEvents();
    });
    at(saved ? `ONBOARDING_FAILED: ${reason}` : `rejected: ${reason}`);
    await condition(allHandlersFinished);
    if (isCancellation(err)) throw err;
    throw ApplicationFailure.nonRetryable(reason, rejected.type ?? ONBOARDING_FAILED);
  }
}

function failureReason(err: unknown): string {
  if (isCancellation(err)) return 'cancelled';
  // An activity failure wraps the activity's own error: its message is the useful one.
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}
