import { ActivityCancellationType, proxyActivities } from '@temporalio/workflow';
import type * as activities from '../activities';

/** The activities as workflows call them, under three retry policies. */

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
