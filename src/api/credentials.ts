import Router from '@koa/router';
import type { CredentialsService } from '../services/credentials';
import { OperatorIdParams, z } from './shared/http';
import type { InternalState } from './shared/internal-tls';
import { parse } from './shared/validate';

/** GET /v1/internal/operators/{id}/credentials: the connector's SMPP password, audited, never cached. */

/** The current version unless the connector asks for a rotation's pending one. */
const CredentialsQuery = z.object({ version: z.enum(['current', 'pending']).default('current') });

export function createCredentialsRouter(credentials: CredentialsService): Router<InternalState> {
  const router = new Router<InternalState>();
  router.get('/operators/:id/credentials', async (ctx) => {
    // Set first so that error answers are not cached either.
    ctx.set('Cache-Control', 'no-store');
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const { version } = parse(CredentialsQuery, ctx.query, 'query');
    // Without TLS (INTERNAL_TLS=false, compose and tests only) there is no identity to record.
    ctx.body = await credentials.read(id, version, ctx.state.caller ?? 'unauthenticated');
  });
  return router;
}
