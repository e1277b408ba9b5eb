import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa from 'koa';
import type { Db } from '../clients/postgres';
import type { Config } from '../config';
import type { HealthCache } from '../health/cache';
import type { Logger } from '../logger';
import type { DrainService } from '../services/drain';
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
  /** The health cache GET /operators/{id}/health reads; omitted, that route does not exist. */
  health?: HealthCache;
}

/** The admin REST API under /v1/admin (behind Kong). Only the OpenAPI document is public. */
export function createAdminApp({ config, db, log, operators, drain, health }: AdminAppDeps): Koa<AuthState> {
  const app = new Koa<AuthState>();
  app.proxy = true;
  app.use(requestLog(log));
  app.use(problemMiddleware(log));
  app.use(bodyParser({ enableTypes: ['json'], jsonLimit: '1mb' }));

  const openapi = buildAdminOpenApi();
  const docs = new Router({ prefix: '/v1/admin' });
  docs.get('/openapi.json', (ctx) => {
    ctx.body = openapi;
  });

  const api = new Router<AuthState>({ prefix: '/v1/admin' });
  api.use(createAdminAuth(config.jwt), idempotency(db, log));
  const operatorRoutes = createOperatorsRouter(operators, config);
  api.use(operatorRoutes.routes(), operatorRoutes.allowedMethods());
  const drainRoutes = createDrainRouter(drain);
  api.use(drainRoutes.routes(), drainRoutes.allowedMethods());
  if (health) api.use(createHealthAdminRouter(db, health).routes());

  app.use(docs.routes());
  app.use(api.routes());
  app.use(api.allowedMethods());
  return app;
}
