import Router from '@koa/router';
import Koa from 'koa';
import type { Registry } from 'prom-client';
import type { Db } from '../clients/postgres';
import type { Config } from '../platform/config';
import type { Logger } from '../platform/logger';
import type { AdminServices } from '../services';
import { createDrainRouter, documentDrain } from './drain';
import { createHealthAdminRouter, documentHealth } from './health';
import { createOnboardingRouter, documentOnboarding } from './onboarding';
import { createOperatorsRouter, documentOperators } from './operators';
import { createPrefixTablesRouter, documentPrefixTables } from './prefix-tables';
import { createRotationRouter, documentRotation } from './rotation';
import { createRoutingRouter, documentRouting } from './routing';
import { createRoutingLintRouter, documentRoutingLint } from './routing-lint';
import { createRoutingRulesRouter, documentRoutingRules } from './routing-rules';
import { createAdminAuth, type AuthState } from './shared/auth';
import { createTpsLimitRouter, documentTpsLimit } from './tps-limits';
import { httpMetrics } from './shared/http-metrics';
import { documentIdempotency, idempotency } from './shared/idempotency';
import { createReferenceRouter, REFERENCE_PREFIX } from './reference-page';
import { buildOpenApi, type OpenApiDocument } from './shared/openapi';
import { jsonBody, JSON_BODY_LIMIT_BYTES } from './shared/json-body';
import { logStreamErrors, problemMiddleware } from './shared/problem';
import { requestLog } from './shared/request-log';

/** The admin REST API under /v1/admin (behind Kong): one router and one OpenAPI part per capability. */

export interface AdminAppDeps extends AdminServices {
  config: Config;
  db: Db;
  log: Logger;
  /** Where the HTTP metrics go (the process's /metrics); omitted, none are kept. */
  registry?: Registry;
}

/**
 * Every authenticated admin route (createAdminApp authenticates before anything reads a body);
 * the OpenAPI drift test reads this router's stack too. The JSON body is read here, in the
 * router, so only for a route that exists: a large body sent to a wrong path or with a wrong
 * method is a 404 or 405, not a 413.
 */
export function createAdminRouter(deps: AdminAppDeps): Router<AuthState> {
  const api = new Router<AuthState>({ prefix: '/v1/admin' });
  const json = jsonBody(JSON_BODY_LIMIT_BYTES);
  api.use((ctx, next) => (streamsItsBody(ctx) ? next() : json(ctx, next)));
  api.use(idempotency(deps.db, deps.log, { hmacKey: deps.config.idempotencyHmacKey, skip: streamsItsBody }));
  for (const routes of [
    createOperatorsRouter(deps.operators, deps.config),
    createOnboardingRouter(deps.onboarding),
    createRotationRouter(deps.rotation),
    createDrainRouter(deps.drain),
    createHealthAdminRouter(deps.health),
    createRoutingRulesRouter(deps.routingRules),
    createTpsLimitRouter(deps.routingRules),
    createPrefixTablesRouter(deps.prefixTables, deps.config),
    createRoutingRouter(deps.routingExplain),
    createRoutingLintRouter(deps.routingLint),
  ]) {
    api.use(routes.routes(), routes.allowedMethods());
  }
  return api;
}

/** The admin API's OpenAPI document (openapi/admin.json), generated from the routes' own schemas. */
export function buildAdminOpenApi(): OpenApiDocument {
  const listener = {
    title: 'operator-management-service admin API',
    description: 'Admin REST API behind Kong. Errors are application/problem+json (RFC 9457).',
    server: '/v1/admin',
    auth: 'bearer' as const,
  };
  return buildOpenApi(
    listener,
    (doc) => {
      documentOnboarding(doc);
      documentOperators(doc);
      documentDrain(doc);
      documentRotation(doc);
      documentHealth(doc);
      documentRoutingRules(doc);
      documentTpsLimit(doc);
      documentPrefixTables(doc);
      documentRouting(doc);
      documentRoutingLint(doc);
    },
    (generated) => documentIdempotency(generated, { server: listener.server, skip: streamsItsBody }),
  );
}

/**
 * Prefix-table entries stream their body (a million lines) straight into PostgreSQL: no JSON
 * parser before them, and no Idempotency-Key (adding or replacing entries is idempotent itself).
 */
function streamsItsBody(ctx: { path: string }): boolean {
  // As loose as the router: any case, an optional trailing slash.
  return /^\/v1\/admin\/prefix-tables\/[^/]+\/entries\/?$/i.test(ctx.path);
}

const OPENAPI_PATH = '/v1/admin/openapi.json';

/** The OpenAPI document and its rendered reference page are public; the rest needs a token. */
const isPublic = (path: string) =>
  path === OPENAPI_PATH || path === REFERENCE_PREFIX || path.startsWith(`${REFERENCE_PREFIX}/`);

/**
 * Only the OpenAPI document (and its reference page) is public; everything else needs an admin token, checked before any
 * body is read: an unauthenticated caller costs a header check, never a 1 MiB parse.
 */
export function createAdminApp(deps: AdminAppDeps): Koa<AuthState> {
  const app = new Koa<AuthState>();
  app.proxy = true;
  logStreamErrors(app, deps.log);
  if (deps.registry) app.use(httpMetrics(deps.registry, 'admin'));
  app.use(requestLog(deps.log));
  app.use(problemMiddleware(deps.log));
  const auth = createAdminAuth(deps.config.jwt, deps.log);
  app.use((ctx, next) => (isPublic(ctx.path) ? next() : auth(ctx, next)));

  const openapi = buildAdminOpenApi();
  const docs = new Router({ prefix: '/v1/admin' });
  docs.get(OPENAPI_PATH.slice('/v1/admin'.length), (ctx) => {
    ctx.body = openapi;
  });

  const api = createAdminRouter(deps);
  app.use(docs.routes());
  const reference = createReferenceRouter();
  app.use(reference.routes());
  app.use(reference.allowedMethods());
  app.use(api.routes());
  app.use(api.allowedMethods());
  return app;
}
