import { defaultPayloadConverter } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { requestContext } from './request-context';

/**
 * The worker's half of the request id (src/workflows/request-id-interceptor.ts sends it): an
 * activity scheduled with the `requestId` header runs inside that request's context, so its own
 * log lines carry it, and the SDK's lines about the activity get it as a log attribute.
 */
export const activityRequestId: ActivityInterceptorsFactory = () => {
  let requestId: string | undefined;
  return {
    inbound: {
      async execute(input, next) {
        const header = input.headers.requestId;
        requestId = header ? defaultPayloadConverter.fromPayload<string>(header) : undefined;
        return requestId === undefined ? next(input) : requestContext.run({ requestId }, () => next(input));
      },
    },
    outbound: {
      getLogAttributes(attributes, next) {
        return next(requestId === undefined ? attributes : { ...attributes, requestId });
      },
    },
  };
};
