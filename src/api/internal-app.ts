import http from 'node:http';
import type { TLSSocket } from 'node:tls';
import Router from '@koa/router';
import Koa from 'koa';
import type { Registry } from 'prom-client';
import type { Config } from '../platform/config';
import { CONNECTIONS_CHECKING_INTERVAL_MS } from '../platform/http-limits';
import type { Logger } from '../platform/logger';
import type { CredentialsService } from '../services/credentials';
import type { OperatorService } from '../services/operators';
import type { PrefixTableService } from '../services/prefix-tables';
import type { RoutingSnapshotService } from '../services/routing-snapshot';
import { createCredentialsRouter, documentCredentials } from './credentials';
import { createHealthReportRouter, documentHealthReport, type HealthReportRoutesDeps } from './health';
import { createOperatorConfigRouter, documentOperatorConfig } from './operators';
import { createInternalPrefixTablesRouter, documentInternalEntries } from './prefix-tables';
import { createRoutingSnapshotRouter, documentRoutingSnapshot } from './routing';
import { buildOpenApi, type OpenApiDocument } from './shared/openapi';
import { allowedCaller, createMtlsServer, type InternalState, type MtlsServerOptions } from './shared/internal-tls';
import { HttpProblem, logStreamErrors, problemMiddleware } from './shared/problem';
import { httpMetrics } from './shared/http-metrics';
import { requestLog } from './shared/request-log';

/**
 * The internal API for smpp-connector: its own port, never behind Kong, mTLS only. A client
 * without a certificate chaining to the CA gets no TLS session at all; one whose certificate
 * lacks clientAuth or whose SAN identity is not on the allowlist gets 403. No admin route is
 * mounted here, and the admin app mounts none of these.
 */

function callerIdentity(allowed: readonly string[]): Koa.Middleware<InternalState> {
  const allowlist = new Set(allowed);
  return async (ctx, next) => {
    const caller = allowedCaller(ctx.req.socket as TLSSocket, allowlist);
    if (!caller) throw new HttpProblem(403, 'Forbidden', 'The client certificate is not allowed to call this API.');
    ctx.state.caller = caller;
    await next();
  };
}

export interface InternalAppDeps {
  config: Config;
  log: Logger;
  operators: OperatorService;
  credentials: CredentialsService;
  /** POST /operators/{id}/health; omitted, the route does not exist. */
  health?: HealthReportRoutesDeps;
  /** The routing snapshot and one table's entries; omitted, the routes do not exist. */
  routing?: { snapshots: RoutingSnapshotService; prefixTables: PrefixTableService };
  /** Where the HTTP metrics go (the process's /metrics); omitted, none are kept. */
  registry?: Registry;
}

export type { InternalState };

export function createInternalApp({
  config,
  log,
  operators,
  credentials,
  health,
  routing,
  registry,
}: InternalAppDeps): Koa<InternalState> {
  const app = new Koa<InternalState>();
  logStreamErrors(app, log);
  if (registry) app.use(httpMetrics(registry, 'internal'));
  app.use(requestLog(log));
  app.use(problemMiddleware(log));
  if (config.internalTls.enabled) app.use(callerIdentity(config.internalTls.allowedClients));

  const router = createInternalRouter({ operators, credentials, health, routing, registry });
  const openapi = buildInternalOpenApi();
  router.get('/openapi.json', (ctx) => {
    ctx.body = openapi;
  });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

/** Every internal route; the OpenAPI drift test reads this router's stack too. */
export function createInternalRouter({
  operators,
  credentials,
  health,
  routing,
  registry,
}: Pick<InternalAppDeps, 'operators' | 'credentials' | 'health' | 'routing' | 'registry'>): Router<InternalState> {
  const router = new Router<InternalState>({ prefix: '/v1/internal' });
  router.use(createOperatorConfigRouter(operators).routes());
  router.use(createCredentialsRouter(credentials, registry).routes());
  if (health) router.use(createHealthReportRouter(health).routes());
  if (routing) {
    router.use(createRoutingSnapshotRouter(routing.snapshots).routes());
    router.use(createInternalPrefixTablesRouter(routing.prefixTables).routes());
  }
  return router;
}

/** The internal API's OpenAPI document (openapi/internal.json), from the routes' own schemas. */
export function buildInternalOpenApi(): OpenApiDocument {
  const listener = {
    title: 'operator-management-service internal API',
    description:
      'For smpp-connector and routing-engine: mTLS on its own port, never routed through Kong. No client certificate means no TLS session; a certificate whose SAN is not on the allowlist gets 403. Errors are application/problem+json (RFC 9457).',
    server: '/v1/internal',
    auth: 'mtls' as const,
  };
  return buildOpenApi(listener, (doc) => {
    documentOperatorConfig(doc);
    documentCredentials(doc);
    documentHealthReport(doc);
    documentRoutingSnapshot(doc);
    documentInternalEntries(doc);
  });
}

/**
 * HTTPS with client certificates required and the TLS files reloaded while running
 * (src/api/internal-tls.ts), or plain HTTP when INTERNAL_TLS=false (tests, compose).
 */
export function createInternalServer(
  app: Koa<InternalState>,
  tls: Config['internalTls'],
  reload: MtlsServerOptions,
): http.Server {
  if (!tls.enabled) {
    return http.createServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS }, app.callback());
  }
  if (!tls.certPath || !tls.keyPath || !tls.caPath)
    throw new Error('INTERNAL_TLS needs INTERNAL_TLS_CERT, _KEY and _CA');
  return createMtlsServer(app.callback(), { certPath: tls.certPath, keyPath: tls.keyPath, caPath: tls.caPath }, reload);
}
