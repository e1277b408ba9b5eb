import { STATUS_CODES } from 'node:http';
import type { Context, Middleware } from 'koa';
import { dependencyFailure } from '../../clients/dependency-errors';
import { EventTooLargeError } from '../../events/envelope';
import { ServiceError } from '../../services/shared/errors';
import type { Logger } from '../../platform/logger';

/** RFC 9457 problem details for every error the HTTP APIs answer with. */

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  [extension: string]: unknown;
}

const byKind: Record<ServiceError['kind'], { status: number; title: string }> = {
  validation: { status: 400, title: 'Invalid request' },
  unprocessable: { status: 422, title: 'Unprocessable content' },
  not_found: { status: 404, title: 'Not found' },
  conflict: { status: 409, title: 'Conflict' },
  precondition_failed: { status: 412, title: 'Precondition failed' },
  precondition_required: { status: 428, title: 'Precondition required' },
  too_large: { status: 413, title: 'Content too large' },
  unavailable: { status: 503, title: 'Service unavailable' },
};

/** An error whose status and text may be shown to the client as they are. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    detail?: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail ?? title);
  }
}

function slug(title: string): string {
  return `/problems/${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
}

export function sendProblem(ctx: Context, problem: Problem): void {
  // Refused before the body was read (a bad line early in a large import): the rest of it would
  // sit in the connection ahead of the client's next request, so this connection ends here.
  if (!ctx.req.complete) ctx.set('Connection', 'close');
  ctx.status = problem.status;
  ctx.type = 'application/problem+json';
  ctx.body = { ...problem, instance: ctx.path };
}

/** How long a client should wait before retrying a 503. */
const RETRY_AFTER_S = 5;

function toProblem(err: unknown): { problem: Problem; headers?: Record<string, string> } | undefined {
  if (err instanceof ServiceError) {
    const { status, title } = byKind[err.kind];
    return {
      problem: { type: slug(title), title, status, detail: err.message, ...err.extra },
      headers: err.kind === 'unavailable' ? { 'Retry-After': String(RETRY_AFTER_S) } : undefined,
    };
  }
  if (err instanceof HttpProblem) {
    return {
      problem: { type: slug(err.title), title: err.title, status: err.status, detail: err.message, ...err.extra },
      headers: err.headers,
    };
  }
  // PostgreSQL broke a deadlock or a serialization conflict with a concurrent change: nothing of
  // this request was written, and the same request will go through on a retry.
  const code = (err as { code?: unknown } | null)?.code;
  if (code === '40P01' || code === '40001') {
    return {
      problem: {
        type: slug('service unavailable'),
        title: 'Service unavailable',
        status: 503,
        detail: 'A concurrent change in PostgreSQL got in the way; nothing was written. Retry.',
        dependency: 'PostgreSQL',
      },
      headers: { 'Retry-After': '1' },
    };
  }
  // Nothing was committed: the event of this change would not fit a NATS message.
  if (err instanceof EventTooLargeError) {
    return {
      problem: {
        type: slug('content too large'),
        title: 'Content too large',
        status: 413,
        detail: `${err.message}; nothing was written.`,
        errors: [{ field: err.field, message: `too large: the event would be ${err.bytes} bytes` }],
      },
    };
  }
  // A dependency down or too slow, wherever it surfaced: a 503 that names it, never a 500.
  const failure = dependencyFailure(err);
  if (failure) {
    return {
      problem: {
        type: slug('service unavailable'),
        title: 'Service unavailable',
        status: 503,
        detail: `${failure.detail} Retry.`,
        dependency: failure.dependency,
      },
      headers: { 'Retry-After': String(failure.retryAfterS) },
    };
  }
  // Koa's own client errors (the body parser's are HttpProblems: src/api/shared/json-body.ts),
  // titled by their status.
  const e = err as { status?: unknown; expose?: unknown; message?: unknown };
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500 && e.expose === true) {
    // The service's own title for a status it answers itself (413, 422), else Node's, sentence case.
    const own = e.status === 400 ? undefined : Object.values(byKind).find((k) => k.status === e.status)?.title;
    const named = STATUS_CODES[e.status] ?? 'Bad request';
    const title = own ?? named.charAt(0) + named.slice(1).toLowerCase();
    const detail = typeof e.message === 'string' ? e.message : title;
    return { problem: { type: slug(title), title, status: e.status, detail } };
  }
  return undefined;
}

export function problemMiddleware(log: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        sendProblem(ctx, {
          type: slug('not found'),
          title: 'Not found',
          status: 404,
          detail: `No route for ${ctx.method} ${ctx.path}`,
        });
      }
      // The router's allowedMethods: 405 for a method the path lacks, 501 for one no path has
      // (TRACE); both are a 405 problem here, with the router's Allow header.
      if ((ctx.status === 405 || ctx.status === 501) && ctx.body == null) {
        const allow = ctx.response.get('Allow');
        sendProblem(ctx, {
          type: slug('method not allowed'),
          title: 'Method not allowed',
          status: 405,
          detail: `${ctx.method} is not allowed on ${ctx.path}${allow ? `; allowed: ${allow}` : ''}.`,
        });
      }
    } catch (err) {
      const mapped = toProblem(err);
      if (mapped) {
        // A dependency's own failure, mapped here rather than by a service that logged it: said
        // once in the logs (an internal error or a missing file of PostgreSQL's is a 503 too).
        if (
          mapped.problem.dependency !== undefined &&
          !(err instanceof ServiceError) &&
          !(err instanceof HttpProblem)
        ) {
          const { code } = err as { code?: unknown };
          log.warn(
            {
              err: err instanceof Error ? err.message : String(err),
              ...(typeof code === 'string' ? { code } : {}),
              dependency: mapped.problem.dependency,
              path: ctx.path,
              method: ctx.method,
            },
            'dependency failed; answered 503',
          );
        }
        for (const [name, value] of Object.entries(mapped.headers ?? {})) ctx.set(name, value);
        sendProblem(ctx, mapped.problem);
        return;
      }
      // Only the message is logged: error objects may carry requests and their headers.
      log.error(
        { err: err instanceof Error ? err.message : String(err), path: ctx.path, method: ctx.method },
        'request failed',
      );
      sendProblem(ctx, {
        type: slug('internal error'),
        title: 'Internal error',
        status: 500,
        detail: 'The request failed; see the service logs.',
      });
    }
  };
}

/** What a stream answer fails with when its client goes away: the client's choice, not a fault. */
const CLIENT_GONE = new Set(['ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE']);

/**
 * Errors after the answer has started (a streamed body that fails or loses its client) reach
 * Koa's `error` event rather than the problem middleware: logged here in the service's format
 * instead of Koa's plain text on stderr, a client gone at debug level.
 */
export function logStreamErrors(
  app: { on(event: 'error', listener: (err: Error, ctx?: Context) => void): unknown },
  log: Logger,
): void {
  app.on('error', (err: Error & { code?: string }, ctx?: Context) => {
    // The message and code only, as for request failures: error objects may carry requests and their headers.
    const fields = { err: err.message, code: err.code, method: ctx?.method, path: ctx?.path };
    if (err.code && CLIENT_GONE.has(err.code)) log.debug(fields, 'client gone before the answer ended');
    else log.error(fields, 'answer failed after it started');
  });
}
