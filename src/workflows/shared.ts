import {
  ActivityCancellationType,
  allHandlersFinished,
  CancellationScope,
  condition,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import { currentStepQuery } from './messages';

/** What every workflow here shares: retry policies, the current step, how a failure reads. */

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
 * Answers the `currentStep` query and shows the step as the workflow's details in the UI;
 * returns the function that moves to the next step.
 */
export function trackSteps(first: string): (step: string) => void {
  let step = first;
  setHandler(currentStepQuery, () => step);
  return (next) => {
    step = next;
    setCurrentDetails(next);
  };
}

/**
 * Waits until every update and signal handler has finished, so none is cut off when the workflow
 * returns. Not cancellable: on a cancelled workflow a plain condition() would throw at once.
 */
export function handlersDone(): Promise<void> {
  return CancellationScope.nonCancellable(() => condition(allHandlersFinished));
}
