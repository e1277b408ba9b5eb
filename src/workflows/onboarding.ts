import { ApplicationFailure, CancellationScope, condition, isCancellation, setHandler } from '@temporalio/workflow';
import { DUPLICATE_OPERATOR, ONBOARDING_FAILED } from '../domain/failures';
import { newestReport } from '../domain/health';
import { wasActivated } from '../domain/lifecycle';
import type { OperatorDraft } from '../domain/operator';
import { connectorHealthSignal, defineSteps, type ConnectorHealth, type StepOf } from './messages';
import { events, steps, untilDone } from './proxies';
import {
  acceptOnFirstStep,
  activationUntilDone,
  bestEffort,
  drainedCountsAsActivated,
  failureReason,
  handlersDone,
  healthByReportedAt,
  trackSteps,
} from './shared';

export interface OnboardingInput {
  draft: OperatorDraft;
  /** The Vault version of the staged password: a reference, never the password. */
  stagedCredentialsVersion: number;
  actor: string;
  bindTimeoutS: number;
}

export interface OnboardingResult {
  operatorId: string;
  /** The onboarding activated the operator; it may be draining, or deleted, by the time this is read. */
  status: 'ACTIVE';
  credentialsVersion: number;
}

/** The onboarding's steps, in order, with the words the Temporal UI shows for each. */
export const onboardingSteps = defineSteps({
  saving: 'saving the operator',
  storingCredentials: 'storing the credentials in Vault',
  announcing: 'announcing the operator',
  waitingForBind: "waiting for the connector's first healthy bind",
  activating: 'activating the operator',
  compensating: 'compensating',
  active: 'done: ACTIVE',
  failed: 'done: ONBOARDING_FAILED',
  rejected: 'rejected',
});
export type OnboardingStep = StepOf<typeof onboardingSteps>;

/**
 * Onboarding (README "Onboarding, step by step"): save, store credentials, announce, wait for the
 * connector's first healthy bind, activate. Any failure (or cancellation) discards the secret and
 * ends ONBOARDING_FAILED, unless the operator turns out to have been activated already.
 */
export async function onboardOperator(input: OnboardingInput): Promise<OnboardingResult> {
  const { draft, actor } = input;
  let lastHealth: ConnectorHealth | undefined;
  let saved = false;
  const at = trackSteps(onboardingSteps, 'saving');
  const acceptance = acceptOnFirstStep();
  // The connector's newest report decides, not the one that happened to arrive last.
  const byReportedAt = healthByReportedAt();
  setHandler(connectorHealthSignal, (health) => {
    lastHealth = byReportedAt ? newestReport(lastHealth, health, 'last') : health;
  });

  try {
    at('saving');
    await acceptance.first(() => steps.saveOperator(draft, actor));
    saved = true;

    at('storingCredentials');
    const credentialsVersion = await steps.storeCredentials(draft.id, input.stagedCredentialsVersion);

    at('announcing');
    await steps.recordOperatorCreated(draft.id, credentialsVersion, actor);
    await events.publishPendingEvents();

    at('waitingForBind', `up to ${input.bindTimeoutS}s`);
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

    at('activating');
    // Past the first healthy bind the connector works with the secret: an outage here must not
    // turn into ONBOARDING_FAILED and a destroyed secret, so the activation waits it out (as a
    // rotation's completion does), and a cancel meanwhile finds it committed.
    if (activationUntilDone()) {
      await CancellationScope.nonCancellable(() => untilDone.activateOperator(draft.id, actor));
    } else {
      await steps.activateOperator(draft.id, actor);
    }
    await events.publishPendingEvents();
    at('active');
    await handlersDone();
    return { operatorId: draft.id, status: 'ACTIVE', credentialsVersion };
  } catch (err) {
    const reason = failureReason(err);
    acceptance.refuse(err, ONBOARDING_FAILED);
    at('compensating', reason);
    const outcome = await CancellationScope.nonCancellable(() => compensate(draft.id, reason, actor));
    if (outcome.activated && outcome.credentialsVersion !== null) {
      // Activation had already committed (the operator may be draining since): the onboarding succeeded.
      at('active');
      await handlersDone();
      return { operatorId: draft.id, status: 'ACTIVE', credentialsVersion: outcome.credentialsVersion };
    }
    at(saved ? 'failed' : 'rejected', reason);
    await handlersDone();
    if (isCancellation(err)) throw err;
    // A duplicate endpoint is the one refusal callers tell apart; anything else is a failed onboarding.
    const duplicate = !saved && acceptance.refusal?.type === DUPLICATE_OPERATOR;
    throw ApplicationFailure.nonRetryable(reason, duplicate ? DUPLICATE_OPERATOR : ONBOARDING_FAILED);
  }
}

/**
 * Marks the operator failed first (that frees its endpoint), then discards its secret unless the
 * operator turned out to be activated (ACTIVE, or drained since: the secret is the live
 * operator's). Runs even when nothing was saved: a save may have committed although its reply
 * was lost. A refused discard is logged, not allowed to skip the rest.
 */
async function compensate(
  operatorId: string,
  reason: string,
  actor: string,
): Promise<{ activated: boolean; credentialsVersion: number | null }> {
  const after = await untilDone.markOnboardingFailed(operatorId, reason, actor);
  const activated =
    after !== null && (after.status === 'ACTIVE' || (wasActivated(after.status) && drainedCountsAsActivated()));
  if (!activated) {
    await bestEffort('discard the credentials of a failed onboarding', operatorId, () =>
      untilDone.discardCredentials(operatorId),
    );
  }
  await events.publishPendingEvents();
  return { activated, credentialsVersion: after?.credentialsVersion ?? null };
}
