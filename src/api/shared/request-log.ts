import type { Middleware } from 'koa';
import type { Logger } from '../../platform/logger';

/** One line per request: who, what, outcome, duration. Never bodies or headers. */
export function requestLog(log: Logger): Middleware<{ actor?: string; caller?: string }> {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
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
  };
}
