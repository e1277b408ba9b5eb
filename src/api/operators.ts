import type {} from '@koa/bodyparser';
import Router from '@koa/router';
import type { Config } from '../config';
import type { OperatorService } from '../services/operators';
import { validationFailed } from '../services/errors';
import type { AuthState } from './auth';
import {
  CreateOperatorRequest,
  ListOperatorsQuery,
  OperatorIdParams,
  PatchOperatorRequest,
  RotateCredentialsRequest,
} from './schemas';
import { parse } from './validate';

/** /v1/admin/operators: validate, call the service, shape the answer. */

function encodeCursor(after: { createdAt: string; id: string }): string {
  return Buffer.from(JSON.stringify([after.createdAt, after.id])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown[];
    if (
      typeof createdAt === 'string' &&
      typeof id === 'string' &&
      !Number.isNaN(Date.parse(createdAt)) &&
      /^[0-9a-f-]{36}$/.test(id)
    ) {
      return { createdAt, id };
    }
  } catch {
    // falls through to the validation error
  }
  throw validationFailed([{ field: 'cursor', message: 'not a cursor this API returned' }]);
}

/** `If-Match: "7"` (or W/"7") → 7; `*` or absent → undefined. */
function ifMatchVersion(header: string): number | undefined {
  if (!header || header.trim() === '*') return undefined;
  const m = /^(?:W\/)?"(\d+)"$/.exec(header.trim());
  if (!m) throw validationFailed([{ field: 'If-Match', message: 'an ETag such as "3", as GET returned' }]);
  return Number(m[1]);
}

export const etagOf = (version: number) => `"${version}"`;

export function createOperatorsRouter(service: OperatorService, config: Config): Router<AuthState> {
  const router = new Router<AuthState>();
  const operatorUrl = (id: string) => `/v1/admin/operators/${id}`;

  router.post('/operators', async (ctx) => {
    const body = parse(CreateOperatorRequest, ctx.request.body, 'body');
    const { password, tpsLimit, routingRules, ...metadata } = body;
    const accepted = await service.startOnboarding({ metadata, password, tpsLimit, routingRules }, ctx.state.actor);
    ctx.status = 202;
    ctx.set('Location', operatorUrl(accepted.operator.id));
    ctx.body = accepted;
  });

  router.get('/operators', async (ctx) => {
    const q = parse(ListOperatorsQuery, ctx.query, 'query');
    const max = config.http.pageSizeMax;
    if (q.limit !== undefined && q.limit > max) {
      throw validationFailed([{ field: 'limit', message: `at most ${max}` }]);
    }
    const limit = q.limit ?? Math.min(50, max);
    const rows = await service.list({
      status: q.status,
      after: q.cursor ? decodeCursor(q.cursor) : undefined,
      limit: limit + 1,
    });
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    ctx.body = { items, nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
  });

  router.get('/operators/:id', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const operator = await service.get(id);
    ctx.set('ETag', etagOf(operator.version));
    ctx.body = operator;
  });

  router.patch('/operators/:id', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const patch = parse(PatchOperatorRequest, ctx.request.body, 'body');
    const expected = ifMatchVersion(ctx.get('If-Match'));
    const operator = await service.updateMetadata(id, patch, expected, ctx.state.actor);
    ctx.set('ETag', etagOf(operator.version));
    ctx.body = operator;
  });

  router.post('/operators/:id/credentials/rotate', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const { password } = parse(RotateCredentialsRequest, ctx.request.body, 'body');
    const accepted = await service.rotateCredentials(id, password, ctx.state.actor);
    ctx.status = 202;
    ctx.set('Location', `${operatorUrl(id)}/workflows`);
    ctx.body = accepted;
  });

  router.get('/operators/:id/workflows', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    ctx.body = { items: await service.listWorkflows(id) };
  });

  return router;
}
