import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { Counter, type Registry } from 'prom-client';

/**
 * `activity_failures_total{activity, retryable}`: every failed activity attempt of this worker,
 * counted where it runs (an activity inbound interceptor). `retryable="false"` is a failure that
 * ends the activity at once (a non-retryable ApplicationFailure): a workflow's refusal or
 * compensation follows. Retryable ones are a dependency or a bug, retried by Temporal.
 */
export function activityFailureInterceptors(registry: Registry): ActivityInterceptorsFactory {
  const failures = new Counter({
    name: 'activity_failures_total',
    help: 'Failed activity attempts by activity type, and whether Temporal retries them',
    labelNames: ['activity', 'retryable'],
    registers: [registry],
  });
  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        try {
          return await next(input);
        } catch (err) {
          const retryable = !(err instanceof ApplicationFailure && err.nonRetryable);
          failures.inc({ activity: ctx.info.activityType, retryable: String(retryable) });
          throw err;
        }
      },
    },
  });
}
