import { defaultPayloadConverter } from '@temporalio/common';
import { workflowInfo, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

/**
 * Carries the id of the request that started a workflow (its memo `requestId`, set by the API)
 * to every activity it schedules, as the Temporal header `requestId`, and onto the workflow's own
 * log lines. Deterministic: the memo is part of the workflow's start.
 */
const requestIdOf = (): string | undefined => {
  const id = workflowInfo().memo?.requestId;
  return typeof id === 'string' ? id : undefined;
};

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      scheduleActivity(input, next) {
        const requestId = requestIdOf();
        if (requestId === undefined) return next(input);
        return next({
          ...input,
          headers: { ...input.headers, requestId: defaultPayloadConverter.toPayload(requestId) },
        });
      },
      getLogAttributes(input, next) {
        const requestId = requestIdOf();
        return next(requestId === undefined ? input : { ...input, requestId });
      },
    },
  ],
});
