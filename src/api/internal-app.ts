import http from 'node:http';
import type { TLSSocket } from 'node:tls';
import Router from '@koa/router';
import Koa from 'koa';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { CredentialsService } from '../services/credentials';
import type { OperatorService } from '../services/operators';
import { createHealthReportRouter, type HealthReportRoutesDeps } from './health';
import { allowedCaller, createMtlsServer, type MtlsServerOptions } from './internal-tls';
import { HttpProblem, problemMiddleware } from './problem';
import { requestLog } from './request-log';
import { CredentialsQuery, OperatorIdParams } from './schemas';
import { parse } from './validate';

/**
 * The internal API for smpp-connector: its own port, never behind Kong, mTLS only. A client
 * without a certificate chaining to the CA gets no TLS session at all; one whose certificate
 * lacks clientAuth or whose SAN identity is not on the allowlist gets 403. No admin route is
 * mounted here, and the admin app mounts none of these.
 */

export interface InternalState {
  caller: string;
}

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
}

export function createInternalApp({
  config,
  log,
  operators,
  credentials,
  health,
}: InternalAppDeps): Koa<InternalState> {
  const app = new Koa<InternalState>();
  app.use(requestLog(log));
  app.use(problemMiddleware(log));
  if (config.internalTls.enabled) app.use(callerIdentity(config.internalTls.allowedClients));

  const router = new Router<InternalState>({ prefix: '/v1/internal' });
  router.get('/operators/:id/config', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    ctx.body = await operators.getConfig(id);
  });
  router.get('/operators/:id/credentials', async (ctx) => {
    // Set first so that error answers are not cached either.
    ctx.set('Cache-Control', 'no-store');
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const { version } = parse(CredentialsQuery, ctx.query, 'query');
    // Without TLS (INTERNAL_TLS=false, compose and tests only) there is no identity to record.
    ctx.body = await credentials.read(id, version, ctx.state.caller ?? 'unauthenticated');
  });
  if (health) router.use(createHealthReportRouter(health).routes());
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
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
  if (!tls.enabled) return http.createServer(app.callback());
  if (!tls.certPath || !tls.keyPath || !tls.caPath)
    throw new Error('INTERNAL_TLS needs INTERNAL_TLS_CERT, _KEY and _CA');
  return createMtlsServer(app.callback(), { certPath: tls.certPath, keyPath: tls.keyPath, caPath: tls.caPath }, reload);
}
