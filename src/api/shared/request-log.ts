import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from '../../platform/logger';
import { REQUEST_ID_PATTERN, requestContext } from '../../platform/request-context';

/**
 * The request's id (the caller's `X-Request-Id` when it is a sane one, else a new UUID), sent back
 * in `X-Request-Id` and in every log line written while the request runs; then one line per
 * request: who, what, outcome, duration. Never bodies or headers.
 */
export function requestLog(log: Logger): Middleware<{ actor?: string; caller?: string }> {
  return async (ctx, next) => {
    const given = ctx.get('X-Request-Id');
    const requestId = REQUEST_ID_PATTERN.test(given) ? given : randomUUID();
    ctx.set('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    await requestContext.run({ requestId }, async () => {
      try {
        await next();
      } finally {
        log.info(
          {
            method: ctx.method,
            path: ctx.path,
            status: ctx.status,
            ms: Number(process.hrtime.bigint() - started) / 1e6,
            actor: ctx.state.actor ?? ctx.state.caller,
          },
          'request',
        );
      }
    });
  };
}
