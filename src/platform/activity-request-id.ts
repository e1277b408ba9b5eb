import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { REQUEST_ID_PATTERN, requestContext } from './request-context';

/** The header's id when it is one the API could have sent; anything else is ignored, never fatal. */
function requestIdOf(header: Payload | undefined): string | undefined {
  if (!header) return undefined;
  try {
    const id: unknown = defaultPayloadConverter.fromPayload(header);
    return typeof id === 'string' && REQUEST_ID_PATTERN.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

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
        requestId = requestIdOf(input.headers.requestId);
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
