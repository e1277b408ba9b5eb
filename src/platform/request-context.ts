import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The request a piece of work belongs to: its id (the caller's `X-Request-Id`, or one made), set
 * by the request log middleware for everything the request runs, and by the worker's activity
 * interceptor for an activity of a workflow the request started. The logger adds it to every
 * line written inside (src/platform/logger.ts).
 */
export interface RequestContext {
  requestId: string;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

export const currentRequestId = (): string | undefined => requestContext.getStore()?.requestId;

/** A caller's id is kept when it is short, printable and has no separators a log reader trips on. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
