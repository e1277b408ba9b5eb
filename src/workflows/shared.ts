import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  patched,
  setCurrentDetails,
  setHandler,
} from '@temporalio/workflow';
import type { Operator } from '../domain/operator';
import { acceptedUpdate, type Steps, type StepState } from './messages';

/** What every workflow here shares: steps, the accepted answer, compensations, how a failure reads. */

/**
 * Whether this run orders health signals by `reportedAt` rather than by arrival. A run started
 * before the rule (no marker in its history) keeps arrival order, so that its history replays
 * exactly as it was written.
 */
export function healthByReportedAt(): boolean {
  return patched('health-signals-by-reported-at');
}

/**
 * Whether this onboarding counts an operator its compensation finds DRAINING or DELETED as
 * activated (its secret kept), as it does one found ACTIVE. A run that compensated before the
 * rule (no marker in its history) replays as it was written.
 */
export function drainedCountsAsActivated(): boolean {
  return patched('onboarding-drained-counts-as-activated');
}

/**
 * Whether this drain's timeout runs from when its `draining` event is published, not from the
 * commit before. A run that waited before the rule (no marker in its history) replays as it was
 * written.
 */
export function drainTimeoutAfterAnnounce(): boolean {
  return patched('drain-timeout-after-announce');
}

/**
 * Whether this drain, failing after it marked the operator DRAINING, puts it back to ACTIVE. A
 * run that failed before the rule (no marker in its history) replays as it was written.
 */
export function failedDrainRestores(): boolean {
  return patched('drain-failure-restores-active');
}

/**
 * Whether a cancel asked while this drain's `draining` event waits for NATS is carried out at
 * once (the announce given up), rather than once NATS is back. A run from before replays as it
 * was written.
 */
export function drainCancelWhileAnnouncing(): boolean {
  return patched('drain-cancel-while-announcing');
}

/**
 * Whether this rotation's last clean-up (the staged entry) is best effort: a refusal from Vault
 * there no longer fails a rotation that is done. A run from before replays as it was written.
 */
export function rotationCleanupBestEffort(): boolean {
  return patched('rotation-cleanup-best-effort');
}

/**
 * Whether this onboarding activates the operator until it is done (past its healthy bind, the
 * connector uses the secret), rather than as a step that gives up and compensates. A run from
 * before replays as it was written.
 */
export function activationUntilDone(): boolean {
  return patched('onboarding-activation-until-done');
}

export function failureReason(err: unknown): string {
  if (isCancellation(err)) return 'cancelled';
  // An activity failure wraps the activity's own error: its message is the useful one.
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}

/**
 * Runs a compensation step whose failure must not skip the rest: the failure is logged (ops see
 * it in the worker log and the activity's history) and the compensation goes on.
 */
export async function bestEffort(what: string, operatorId: string, step: () => Promise<unknown>): Promise<void> {
  try {
    await step();
  } catch (err) {
    log.error(`could not ${what}`, { operatorId, reason: failureReason(err) });
  }
}

/**
 * Answers the `currentStep` query with the step and shows its label (and detail) as the
 * workflow's details in the Temporal UI; returns the function that moves to the next step.
 */
export function trackSteps<S extends string>(
  { labels, query }: Steps<S>,
  first: S,
): (step: S, detail?: string) => void {
  let state: StepState<S> = { step: first, detail: null };
  setHandler(query, () => state);
  return (step, detail) => {
    state = { step, detail: detail ?? null };
    setCurrentDetails(detail ? `${labels[step]}: ${detail}` : labels[step]);
  };
}

/**
 * The `accepted` update: it waits until the first step has committed and answers with its
 * operator, or is refused with the first failure. `refuse` after any later failure makes sure a
 * waiting update gets an answer before the workflow closes.
 */
export function acceptOnFirstStep(): {
  first(step: () => Promise<Operator>): Promise<Operator>;
  refuse(err: unknown, type?: string): void;
  /** The failure the update was refused with, if it was. */
  readonly refusal: ApplicationFailure | undefined;
} {
  let accepted: Operator | undefined;
  let refused: ApplicationFailure | undefined;
  setHandler(acceptedUpdate, async () => {
    await condition(() => accepted !== undefined || refused !== undefined);
    if (refused) throw refused;
    return accepted as Operator;
  });
  const refuse = (err: unknown, type?: string) => {
    refused ??=
      err instanceof ActivityFailure && err.cause instanceof ApplicationFailure
        ? err.cause
        : ApplicationFailure.nonRetryable(failureReason(err), type);
  };
  return {
    async first(step) {
      try {
        accepted = await step();
        return accepted;
      } catch (err) {
        refuse(err);
        throw err;
      }
    },
    refuse,
    get refusal() {
      return refused;
    },
  };
}

/**
 * Waits until every update and signal handler has finished, so none is cut off when the workflow
 * returns. Not cancellable: on a cancelled workflow a plain condition() would throw at once.
 */
export function handlersDone(): Promise<void> {
  return CancellationScope.nonCancellable(() => condition(allHandlersFinished));
}
