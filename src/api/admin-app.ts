import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa from 'koa';
import type { Db } from '../clients/postgres';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { DrainService } from '../services/drain';
import type { HealthService } from '../services/health';
import type { OperatorService } from '../services/operators';
import { createAdminAuth, type AuthState } from './auth';
import { createDrainRouter } from './drain';
import { createHealthAdminRouter } from './health';
import { idempotency } from './idempotency';
import { buildAdminOpenApi } from './openapi';
import { createOperatorsRouter } from './operators';
import { problemMiddleware } from './problem';
import { requestLog } from './request-log';

export interface AdminAppDeps {
  config: Config;
  db: Db;
  log: Logger;
  operators: OperatorService;
  drain: DrainService;
  health: HealthService;
}

/** Every authenticated admin route; the OpenAPI drift test reads this router's stack too. */
export function createAdminRouter({ config, db, log, operators, drain, health }: AdminAppDeps): Router<AuthState> {
  const api = new Router<AuthState>({ prefix: '/v1/admin' });
  api.use(createAdminAuth(config.jwt), idempotency(db, log));
  for (const routes of [
    createOperatorsRouter(operators, config),
    createDrainRouter(drain),
    createHealthAdminRouter(health),
  ]) {
    api.use(routes.routes(), routes.allowedMethods());
  }
  return api;
}

/** The admin REST API under /v1/admin (behind Kong). Only the OpenAPI document is public. */
export function createAdminApp(deps: AdminAppDeps): Koa<AuthState> {
  const app = new Koa<AuthState>();
  app.proxy = true;
  app.use(requestLog(deps.log));
  app.use(problemMiddleware(deps.log));
  app.use(bodyParser({ enableTypes: ['json'], jsonLimit: '1mb' }));

  const openapi = buildAdminOpenApi();
  const docs = new Router({ prefix: '/v1/admin' });
  docs.get('/openapi.json', (ctx) => {
    ctx.body = openapi;
  });

  const api = createAdminRouter(deps);
  app.use(docs.routes());
  app.use(api.routes());
  app.use(api.allowedMethods());
  return app;
}
