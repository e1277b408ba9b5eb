import { dependencyFailure } from '../clients/dependency-errors';
import Router from '@koa/router';
import { HEALTH_STATUSES } from '../domain/operator';
import { countRejected, type HealthMetrics } from '../health/metrics';
import type { HealthPipeline } from '../health/pipeline';
import { HealthReportSchema, validateReport } from '../health/report';
import type { Logger } from '../platform/logger';
import { notFound, unavailable, validationFailed } from '../services/shared/errors';
import type { HealthService } from '../services/health';
import { jsonBody } from './shared/json-body';
import type { AuthState } from './shared/auth';
import { OperatorIdParams, z } from './shared/http';
import type { InternalState } from './shared/internal-tls';
import { commonErrors, json, problem, unavailableProblem, undecodableBody, type AdminDoc } from './shared/openapi';
import { parse } from './shared/validate';

/** Operator health: the admin read (`/v1/admin`) and the connectors' report (`/v1/internal`). */

const HISTORY_DEFAULT = 20;
/** The largest JSON body POST /v1/internal/operators/{id}/health reads (a report is a few hundred bytes). */
const REPORT_MAX_BYTES = 16 * 1024;
const HISTORY_MAX = 200;

const HealthHistoryQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(HISTORY_MAX).optional(),
});

const HealthEntry = z.object({
  status: z.enum(HEALTH_STATUSES),
  boundSessions: z.number().int(),
  inflight: z.number().int(),
  credentialsVersion: z.number().int().nullable(),
  connectorInstance: z.string(),
  reportedAt: z.iso.datetime(),
});

const OperatorHealth = z
  .object({
    operatorId: z.uuid(),
    status: z.enum([...HEALTH_STATUSES, 'UNKNOWN']).openapi({
      description: 'The cached status; UNKNOWN when no report arrived for 60 s (the cache key is gone)',
    }),
    current: HealthEntry.extend({ previousStatus: z.enum(HEALTH_STATUSES).nullable() })
      .nullable()
      .openapi({ description: 'The cached report, as the routing engine reads it; null when unknown' }),
    expiresInS: z.number().int().nullable().openapi({ description: 'Seconds until the cached report expires' }),
    history: z.array(HealthEntry).openapi({ description: 'The latest logged reports, newest first' }),
  })
  .openapi('OperatorHealth');

// Rebuilt here: schemas made before extendZodWithOpenApi ran (src/health) lack .openapi().
export const ConnectorHealthReport = z.object(HealthReportSchema.shape).openapi('ConnectorHealthReport');

export const HealthReportAccepted = z
  .object({
    accepted: z.literal(true),
    statusChanged: z.boolean().openapi({ description: 'The report changed the cached status' }),
  })
  .openapi('HealthReportAccepted');

export function createHealthAdminRouter(health: HealthService): Router<AuthState> {
  const router = new Router<AuthState>();
  router.get('/operators/:id/health', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const { limit } = parse(HealthHistoryQuery, ctx.query, 'query');
    const { cached, history } = await health.read(id, limit ?? HISTORY_DEFAULT);
    const current: z.infer<typeof OperatorHealth>['current'] = cached
      ? {
          status: cached.health.status,
          previousStatus: cached.health.previousStatus,
          boundSessions: cached.health.boundSessions,
          inflight: cached.health.inflight,
          credentialsVersion: cached.health.credentialsVersion,
          connectorInstance: cached.health.connectorInstance,
          reportedAt: cached.health.reportedAt,
        }
      : null;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      operatorId: id,
      status: current?.status ?? 'UNKNOWN',
      current,
      expiresInS: cached && cached.ttlS >= 0 ? cached.ttlS : null,
      history,
    } satisfies z.infer<typeof OperatorHealth>;
  });
  return router;
}

export interface HealthReportRoutesDeps {
  pipeline: HealthPipeline;
  metrics: HealthMetrics;
  log: Logger;
}

/**
 * POST /operators/{id}/health: the same pipeline as the NATS path, for connectors that cannot
 * publish. 202 once logged and cached; 400 naming the field; 404 for an unknown operator; 503
 * when a dependency is down (the connector sends its next report anyway).
 */
export function createHealthReportRouter({ pipeline, metrics, log }: HealthReportRoutesDeps): Router<InternalState> {
  const router = new Router<InternalState>();
  const report = jsonBody(REPORT_MAX_BYTES);
  router.post('/operators/:id/health', report, async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const result = validateReport(ctx.request.body, id);
    if (!result.ok) {
      countRejected(metrics, result.reason, 'http');
      log.warn({ operatorId: id, reason: result.reason, errors: result.errors }, 'health report rejected');
      throw validationFailed(result.errors);
    }
    let outcome;
    try {
      [outcome] = await pipeline.ingest([result.valid]);
    } catch (err) {
      log.warn({ operatorId: id, err: (err as Error).message }, 'health report not stored');
      const failure = dependencyFailure(err);
      if (!failure) throw err;
      throw unavailable(failure.dependency, 'The report could not be stored; send it again.');
    }
    if (!outcome?.accepted) {
      countRejected(metrics, 'unknown_operator', 'http');
      throw notFound(`Operator ${id}`);
    }
    metrics.consumed.inc({ source: 'http' });
    ctx.status = 202;
    ctx.body = { accepted: true, statusChanged: outcome.changed } satisfies z.infer<typeof HealthReportAccepted>;
  });
  return router;
}

export function documentHealth({ registry, security }: AdminDoc): void {
  registry.registerPath({
    method: 'get',
    path: '/operators/{id}/health',
    summary: "The operator's cached health and its latest reports",
    description:
      'The report the routing engine reads from Redis (status UNKNOWN when none arrived for 60 s) and the newest entries of the health log (limit, default 20).',
    security,
    request: { params: OperatorIdParams, query: HealthHistoryQuery },
    responses: { 200: json('Health', OperatorHealth), ...commonErrors, 404: problem('No such operator') },
  });
}

export function documentHealthReport({ registry, security }: AdminDoc): void {
  registry.registerPath({
    method: 'post',
    path: '/operators/{id}/health',
    summary: "A connector's health report, for connectors that cannot publish to NATS",
    description:
      'The same pipeline as connector.health.<id>: logged, cached (a newer report wins), operator.health on a change, waiting workflows signalled.',
    security,
    request: { params: OperatorIdParams, body: { content: { 'application/json': { schema: ConnectorHealthReport } } } },
    responses: {
      202: json('Logged and cached', HealthReportAccepted),
      400: problem(
        'An invalid report; `errors` names each field (a body that is not JSON, or could not be read whole or decoded, has none)',
      ),
      403: problem('The client certificate is not allowed'),
      404: problem('No such live operator'),
      413: problem(`The JSON body is larger than ${REPORT_MAX_BYTES} bytes ; nothing was stored`),
      415: undecodableBody,
      503: unavailableProblem(
        'PostgreSQL, Redis, NATS or Temporal did not take it (`dependency` names it); send it again',
      ),
    },
  });
}
