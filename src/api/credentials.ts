import Router from '@koa/router';
import { Counter, type Registry } from 'prom-client';
import { dependencyFailure } from '../clients/dependency-errors';
import type { CredentialsService } from '../services/credentials';
import { ServiceError } from '../services/shared/errors';
import { OperatorIdParams, z } from './shared/http';
import type { InternalState } from './shared/internal-tls';
import { json, problem, unavailableProblem, type AdminDoc } from './shared/openapi';
import { parse } from './shared/validate';

/** GET /v1/internal/operators/{id}/credentials: the connector's SMPP password, audited, never cached. */

/** The current version unless the connector asks for a rotation's pending one. */
const CredentialsQuery = z.object({ version: z.enum(['current', 'pending']).default('current') });

/** `credential_reads_total{caller, outcome}`: one series per allowed connector identity. */
function readsCounter(registry: Registry): Counter<'caller' | 'outcome'> {
  const existing = registry.getSingleMetric('credential_reads_total');
  if (existing) return existing as Counter<'caller' | 'outcome'>;
  return new Counter({
    name: 'credential_reads_total',
    help: 'Credential reads over the internal API, by caller identity and outcome (ok, or the refusal)',
    labelNames: ['caller', 'outcome'],
    registers: [registry],
  });
}

/** A refusal by its kind; PostgreSQL or Vault down is `unavailable` too (the alert watches it). */
function outcomeOf(err: unknown): string {
  if (err instanceof ServiceError) return err.kind;
  return dependencyFailure(err) ? 'unavailable' : 'error';
}

export function createCredentialsRouter(credentials: CredentialsService, registry?: Registry): Router<InternalState> {
  const router = new Router<InternalState>();
  const reads = registry ? readsCounter(registry) : undefined;
  router.get('/operators/:id/credentials', async (ctx) => {
    // Set first so that error answers are not cached either.
    ctx.set('Cache-Control', 'no-store');
    // Without TLS (INTERNAL_TLS=false, compose and tests only) there is no identity to record.
    const caller = ctx.state.caller ?? 'unauthenticated';
    try {
      const { id } = parse(OperatorIdParams, ctx.params, 'path');
      const { version } = parse(CredentialsQuery, ctx.query, 'query');
      ctx.body = await credentials.read(id, version, caller);
      reads?.inc({ caller, outcome: 'ok' });
    } catch (err) {
      reads?.inc({ caller, outcome: outcomeOf(err) });
      throw err;
    }
  });
  return router;
}

const ServedCredentials = z
  .object({
    operatorId: z.uuid(),
    systemId: z.string(),
    password: z.string().openapi({ format: 'password' }),
    credentialsVersion: z.number().int(),
  })
  .openapi('Credentials');

export function documentCredentials({ registry, security }: AdminDoc): void {
  registry.registerPath({
    method: 'get',
    path: '/operators/{id}/credentials',
    summary: "The operator's SMPP credentials at an explicit Vault version",
    description:
      'The current version, or with version=pending the version a running rotation waits for the connector to bind with. Cache-Control: no-store; every read is audit-logged (caller, operator, version, outcome; never the secret).',
    security,
    request: { params: OperatorIdParams, query: CredentialsQuery },
    responses: {
      200: json('The credentials', ServedCredentials),
      400: problem('Not an operator id, or a version other than current or pending'),
      403: problem('The client certificate is not allowed'),
      404: problem('No such live operator, or no rotation pending'),
      503: unavailableProblem('Vault or PostgreSQL is unavailable (`dependency` names it); retry'),
    },
  });
}
