import { ApplicationFailure } from '@temporalio/common';
import { Registry } from 'prom-client';
import { activityFailureInterceptors } from '../../src/platform/activity-metrics';
import { connectorHealthSignal } from '../../src/workflows/messages';
import { rotateCredentials, rotationSteps } from '../../src/workflows/rotation';
import {
  OPERATOR_ID,
  report,
  startAccepted,
  stubActivities,
  useTimeSkippingEnv,
  waitForStep,
  withWorker,
} from '../support/time-skipping';

/** activity_failures_total: each failed attempt counted by activity and by whether it is retried. */

describe('activity failure metrics', () => {
  const env = useTimeSkippingEnv();

  it('counts a retried failure and a non-retryable one per activity', async () => {
    const registry = new Registry();
    let publishes = 0;
    const stubs = stubActivities({
      async publishPendingEvents() {
        publishes++;
        if (publishes === 1) throw new Error('NATS is down'); // retried by Temporal
        return 0;
      },
      async discardStagedRotation() {
        throw ApplicationFailure.nonRetryable('refused', 'Test');
      },
    });
    await withWorker(
      env(),
      stubs.activities,
      async (taskQueue) => {
        const { handle } = await startAccepted(env(), rotateCredentials, taskQueue, {
          operatorId: OPERATOR_ID,
          stagedVersion: 7,
          actor: 'test-admin',
          bindTimeoutS: 600,
        });
        await waitForStep(handle, rotationSteps.query, 'waitingForBind');
        await handle.signal(connectorHealthSignal, report('UP', 2));
        await handle.result().catch(() => undefined);
      },
      undefined,
      { activity: [activityFailureInterceptors(registry)] },
    );
    const text = await registry.metrics();
    expect(text).toMatch(/^activity_failures_total\{activity="publishPendingEvents",retryable="true"\} 1$/m);
    expect(text).toMatch(/^activity_failures_total\{activity="discardStagedRotation",retryable="false"\} 1$/m);
  });
});
