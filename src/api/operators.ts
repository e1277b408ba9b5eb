import Router from '@koa/router';
import { BIND_TYPES, OPERATOR_STATUSES, SMPP_LIMITS } from '../domain/operator';
import { Operator, RoutingRule } from '../domain/schemas';
import type { Config } from '../platform/config';
import type { OperatorService } from '../services/operators';
import type { AuthState } from './shared/auth';
import {
  Cursor,
  decodeCursor,
  DisplayName,
  OperatorIdParams,
  parseIfMatch,
  pageLimit,
  sendVersioned,
  toPage,
  z,
} from './shared/http';
import type { InternalState } from './shared/internal-tls';
import { commonErrors, etagHeader, ifMatch, json, jsonBodyErrors, problem, type AdminDoc } from './shared/openapi';
import { parse } from './shared/validate';

/** Operators: list, read, change metadata, their workflow runs; and the connectors' config read. */

const labels = z
  .record(z.string().regex(/^[a-z0-9_.-]{1,63}$/), z.string().max(255))
  .refine((l) => Object.keys(l).length <= 50, 'at most 50 labels');

/** The metadata fields' rules, shared by onboarding (create) and PATCH (change). */
export const metadataFields = {
  name: DisplayName,
  host: z
    .string()
    .min(1)
    .max(253)
    .regex(/^[A-Za-z0-9.:-]+$/, 'a hostname or IP address'),
  port: z.number().int().min(1).max(65535),
  systemId: z.string().min(1).max(SMPP_LIMITS.systemId),
  systemType: z.string().max(SMPP_LIMITS.systemType),
  bindType: z.enum(BIND_TYPES),
  tls: z.boolean(),
  windowSize: z.number().int().min(1).max(1000),
  enquireLinkIntervalS: z.number().int().min(5).max(3600),
  labels,
};

export const PatchOperatorRequest = z
  .strictObject({
    name: metadataFields.name.optional(),
    host: metadataFields.host.optional(),
    port: metadataFields.port.optional(),
    systemType: metadataFields.systemType.optional(),
    bindType: metadataFields.bindType.optional(),
    tls: metadataFields.tls.optional(),
    windowSize: metadataFields.windowSize.optional(),
    enquireLinkIntervalS: metadataFields.enquireLinkIntervalS.optional(),
    labels: labels.optional(),
  })
  .refine((p) => Object.values(p).some((v) => v !== undefined), 'give at least one field to change')
  .openapi('PatchOperatorRequest', { minProperties: 1 });

const OperatorPage = z
  .object({
    items: z.array(Operator),
    nextCursor: z.string().nullable(),
  })
  .openapi('OperatorPage');

const ListOperatorsQuery = z.strictObject({
  status: z.enum(OPERATOR_STATUSES).optional(),
  // The document states the default PAGE_SIZE_MAX; a deployment that raises it accepts more.
  limit: z.coerce.number().int().min(1).openapi({ maximum: 100 }).optional(),
  cursor: Cursor.optional(),
});

const WorkflowRun = z
  .object({
    workflowId: z.string(),
    runId: z.string(),
    type: z.string(),
    status: z.string(),
    startTime: z.iso.datetime(),
    closeTime: z.iso.datetime().nullable(),
    url: z.url(),
  })
  .openapi('WorkflowRun');

const WorkflowRuns = z.object({ items: z.array(WorkflowRun) }).openapi('WorkflowRuns');

export const OperatorConfig = z
  .object({
    operator: Operator,
    routingRules: z.array(RoutingRule),
    version: z.number().int(),
  })
  .openapi('OperatorConfig');

export function createOperatorsRouter(service: OperatorService, config: Config): Router<AuthState> {
  const router = new Router<AuthState>();

  router.get('/operators', async (ctx) => {
    const q = parse(ListOperatorsQuery, ctx.query, 'query');
    const limit = pageLimit(q.limit, config.http.pageSizeMax);
    const after = q.cursor ? decodeCursor(q.cursor) : undefined;
    ctx.body = toPage(await service.list({ status: q.status, after, limit: limit + 1 }), limit);
  });

  router.get('/operators/:id', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const operator = await service.get(id);
    sendVersioned(ctx, operator);
  });

  router.patch('/operators/:id', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const patch = parse(PatchOperatorRequest, ctx.request.body, 'body');
    const expected = parseIfMatch(ctx.get('If-Match'));
    const operator = await service.updateMetadata(id, patch, expected, ctx.state.actor);
    sendVersioned(ctx, operator);
  });

  router.get('/operators/:id/workflows', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    ctx.body = { items: await service.listWorkflows(id) };
  });

  return router;
}

/** GET /v1/internal/operators/{id}/config: what a connector needs besides its password. */
export function createOperatorConfigRouter(service: OperatorService): Router<InternalState> {
  const router = new Router<InternalState>();
  router.get('/operators/:id/config', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    ctx.body = (await service.getConfig(id)) satisfies z.infer<typeof OperatorConfig>;
  });
  return router;
}

export function documentOperators({ registry, security }: AdminDoc): void {
  registry.registerPath({
    method: 'get',
    path: '/operators',
    summary: 'List operators',
    security,
    request: { query: ListOperatorsQuery },
    responses: { 200: json('A page of operators', OperatorPage), ...commonErrors },
  });

  registry.registerPath({
    method: 'get',
    path: '/operators/{id}',
    summary: 'Get an operator with its TPS limit',
    security,
    request: { params: OperatorIdParams },
    responses: {
      200: { ...json('The operator', Operator), headers: etagHeader },
      ...commonErrors,
      404: problem('No such operator'),
    },
  });

  registry.registerPath({
    method: 'patch',
    path: '/operators/{id}',
    summary: 'Change operator metadata',
    description: 'Bumps the version and publishes operator.config.updated. Credentials change only by rotation.',
    security,
    request: {
      params: OperatorIdParams,
      headers: ifMatch,
      body: { content: { 'application/json': { schema: PatchOperatorRequest } } },
    },
    responses: {
      200: { ...json('The changed operator', Operator), headers: etagHeader },
      ...commonErrors,
      ...jsonBodyErrors,
      404: problem('No such operator'),
      409: problem('The new endpoint belongs to another operator, or the operator can no longer change'),
      412: problem('If-Match does not match the current version'),
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/operators/{id}/workflows',
    summary: "The operator's workflow runs with Temporal UI links",
    security,
    request: { params: OperatorIdParams },
    responses: { 200: json('Workflow runs', WorkflowRuns), ...commonErrors, 404: problem('No such operator') },
  });
}

export function documentOperatorConfig({ registry, security }: AdminDoc): void {
  registry.registerPath({
    method: 'get',
    path: '/operators/{id}/config',
    summary: "The operator's config: metadata, routing rules, TPS limit, and its version",
    security,
    request: { params: OperatorIdParams },
    responses: {
      200: json('The config', OperatorConfig),
      400: problem('Not an operator id'),
      403: problem('The client certificate is not allowed'),
      404: problem('No such operator'),
      503: commonErrors[503],
    },
  });
}
