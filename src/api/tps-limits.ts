import Router from '@koa/router';
import { TpsLimit } from '../domain/schemas';
import type { RoutingRuleService } from '../services/routing-rules';
import type { AuthState } from './shared/auth';
import { OperatorIdParams, requiredIfMatch, sendVersioned, z } from './shared/http';
import { commonErrors, etagHeader, ifMatch, json, jsonBodyErrors, problem, type AdminDoc } from './shared/openapi';
import { parse } from './shared/validate';

/** /operators/{id}/tps-limit: the operator's throughput limit, as every enforcer applies it. */

/** The one definition enforcers implement; also in the README ("Routing configuration"). */
export const TOKEN_BUCKET = [
  'Token bucket: capacity = max(1, tpsCap × burstWindowMs / 1000) tokens, full at start, refilled continuously at tpsCap tokens per second, never above capacity.',
  'Each submitted segment takes one token (a long message of 3 segments takes 3).',
  'enforcementMode: `hard` refuses a segment when the bucket lacks its token (the connector answers ESME_RTHROTTLED); `shape` queues it and sends it as tokens come; `monitor` sends it anyway and only counts what `hard` would have refused.',
].join(' ');

const OperatorTpsLimit = z
  .object({ operatorId: z.uuid(), version: z.number().int(), tpsLimit: z.union([TpsLimit, z.null()]) })
  .openapi('OperatorTpsLimit');

export function createTpsLimitRouter(service: RoutingRuleService): Router<AuthState> {
  const router = new Router<AuthState>();
  router.get('/operators/:id/tps-limit', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const limit = await service.getTpsLimit(id);
    sendVersioned(ctx, limit);
  });
  router.put('/operators/:id/tps-limit', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const body = parse(TpsLimit, ctx.request.body, 'body');
    const limit = await service.replaceTpsLimit(id, body, requiredIfMatch(ctx.get('If-Match')), ctx.state.actor);
    sendVersioned(ctx, limit);
  });
  return router;
}

export function documentTpsLimit({ registry, security }: AdminDoc): void {
  const answer = { ...json('The TPS limit', OperatorTpsLimit), headers: etagHeader };
  registry.registerPath({
    method: 'get',
    path: '/operators/{id}/tps-limit',
    summary: "The operator's TPS limit",
    description: TOKEN_BUCKET,
    security,
    request: { params: OperatorIdParams },
    responses: { 200: answer, ...commonErrors, 404: problem('No such operator') },
  });
  registry.registerPath({
    method: 'put',
    path: '/operators/{id}/tps-limit',
    summary: "Replace the operator's TPS limit",
    description: `Needs If-Match with the operator version; bumps it and publishes operator.config.tps_updated. ${TOKEN_BUCKET}`,
    security,
    request: {
      params: OperatorIdParams,
      headers: ifMatch,
      body: { content: { 'application/json': { schema: TpsLimit } } },
    },
    responses: {
      200: answer,
      ...commonErrors,
      ...jsonBodyErrors,
      404: problem('No such operator'),
      409: problem('The operator is still being created or can no longer change'),
      412: problem('If-Match does not match the current version'),
      428: problem('If-Match is missing'),
    },
  });
}
