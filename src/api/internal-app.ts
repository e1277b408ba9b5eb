import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import type { TLSSocket } from 'node:tls';
import Router from '@koa/router';
import Koa from 'koa';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { OperatorService } from '../services/operators';
import { HttpProblem, problemMiddleware } from './problem';
import { requestLog } from './request-log';
import { OperatorIdParams } from './schemas';
import { parse } from './validate';

/**
 * The internal API for smpp-connector: its own port, never behind Kong, mTLS only. A client
 * without a certificate chaining to the CA gets no TLS session at all; one whose SAN identity
 * is not on the allowlist gets 403.
 */

export interface InternalState {
  caller: string;
}

/** DNS and URI subject alternative names of a certificate, as written. */
export function identitiesOf(raw: Buffer): string[] {
  const san = new X509Certificate(raw).subjectAltName ?? '';
  return san
    .split(', ')
    .map((entry) => /^(?:DNS|URI):(.+)$/.exec(entry)?.[1])
    .filter((v): v is string => v !== undefined);
}

function callerIdentity(allowed: readonly string[]): Koa.Middleware<InternalState> {
  return async (ctx, next) => {
    const socket = ctx.req.socket as TLSSocket;
    const raw = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate().raw : undefined;
    const caller = raw ? identitiesOf(raw).find((id) => allowed.includes(id)) : undefined;
    if (!caller) throw new HttpProblem(403, 'Forbidden', 'The client certificate is not allowed to call this API.');
    ctx.state.caller = caller;
    await next();
  };
}

export interface InternalAppDeps {
  config: Config;
  log: Logger;
  operators: OperatorService;
}

export function createInternalApp({ config, log, operators }: InternalAppDeps): Koa<InternalState> {
  const app = new Koa<InternalState>();
  app.use(requestLog(log));
  app.use(problemMiddleware(log));
  if (config.internalTls.enabled) app.use(callerIdentity(config.internalTls.allowedClients));

  const router = new Router<InternalState>({ prefix: '/v1/internal' });
  router.get('/operators/:id/config', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    ctx.body = await operators.getConfig(id);
  });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

/** HTTPS with client certificates required, or plain HTTP when INTERNAL_TLS=false (tests, compose). */
export function createInternalServer(app: Koa<InternalState>, tls: Config['internalTls']): http.Server {
  if (!tls.enabled) return http.createServer(app.callback());
  if (!tls.certPath || !tls.keyPath || !tls.caPath)
    throw new Error('INTERNAL_TLS needs INTERNAL_TLS_CERT, _KEY and _CA');
  return https.createServer(
    {
      cert: readFileSync(tls.certPath),
      key: readFileSync(tls.keyPath),
      ca: readFileSync(tls.caPath),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    },
    app.callback(),
  );
}
