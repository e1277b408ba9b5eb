import type { Context } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

/**
 * When each activity attempt began on this worker, for the activities that bound their work by
 * the attempt's start-to-close timeout (withinAttempt, src/activities/shared.ts). Temporal's
 * own info has the attempt's scheduled time only, which a busy task queue would push early.
 */
const startedAt = new WeakMap<Context, number>();

export const activityAttemptStart: ActivityInterceptorsFactory = (ctx) => {
  startedAt.set(ctx, Date.now());
  return {};
};

/** When the attempt of `ctx` began; undefined when no worker interceptor saw it begin. */
export function attemptStartedAt(ctx: Context): number | undefined {
  return startedAt.get(ctx);
}
