import {
  ActivityCancellationType,
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  type QueryDefinition,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import type { Operator } from '../domain/operator';
import { acceptedUpdate, type StepState } from './messages';

/** What every workflow here shares: retry policies, steps, the accepted answer, how a failure reads. */

type Activities = activities.Activities;

/**
 * A step gives up on an unreachable dependency after a few minutes, so its workflow can
 * compensate. On a cancel it waits for a running step to finish, so compensation never races a
 * late commit.
 */
export const steps = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 10 },
});

/** Events already committed to the outbox: publishing waits out a NATS outage instead of failing. */
export const events = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

/** Compensations and steps past the point of no return must finish, however long a dependency is down. */
export const untilDone = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
});

export function failureReason(err: unknown): string {
  if (isCancellation(err)) return 'cancelled';
  // An activity failure wraps the activity's own error: its message is the useful one.
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}

/**
 * Answers the `currentStep` query with the step and shows its label (and detail) as the
 * workflow's details in the Temporal UI; returns the function that moves to the next step.
 */
export function trackSteps<S extends string>(
  query: QueryDefinition<StepState<S>>,
  labels: Readonly<Record<S, string>>,
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
