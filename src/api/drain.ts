import Router from '@koa/router';
import type { DrainService } from '../services/drain';
import type { AuthState } from './auth';
import { etagOf } from './operators';
import { OperatorIdParams } from './schemas';
import { parse } from './validate';

/** DELETE /operators/{id} (the drain, a soft delete) and POST /operators/{id}/drain/cancel. */
export function createDrainRouter(drain: DrainService): Router<AuthState> {
  const router = new Router<AuthState>();

  router.delete('/operators/:id', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const accepted = await drain.startDrain(id, ctx.state.actor);
    ctx.status = 202;
    ctx.set('Location', `/v1/admin/operators/${id}/workflows`);
    ctx.body = accepted;
  });

  router.post('/operators/:id/drain/cancel', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const operator = await drain.cancelDrain(id, ctx.state.actor);
    ctx.set('ETag', etagOf(operator.version));
    ctx.body = operator;
  });

  return router;
}
