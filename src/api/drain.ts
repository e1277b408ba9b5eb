import Router from '@koa/router';
import { Operator } from '../domain/schemas';
import type { DrainService } from '../services/drain';
import { sendAccepted, WorkflowAccepted } from './shared/accepted';
import type { AuthState } from './shared/auth';
import { OperatorIdParams, sendVersioned } from './shared/http';
import {
  commonErrors,
  etagHeader,
  json,
  jsonBodyErrors,
  location,
  problem,
  unavailableProblem,
  type AdminDoc,
} from './shared/openapi';
import { parse } from './shared/validate';

/** DELETE /operators/{id} (the drain, a soft delete) and POST /operators/{id}/drain/cancel. */
export function createDrainRouter(drain: DrainService): Router<AuthState> {
  const router = new Router<AuthState>();

  router.delete('/operators/:id', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const started = await drain.start(id, ctx.state.actor);
    sendAccepted(ctx, started, `/v1/admin/operators/${id}/workflows`);
  });

  router.post('/operators/:id/drain/cancel', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const operator = await drain.cancel(id, ctx.state.actor);
    sendVersioned(ctx, operator);
  });

  return router;
}

export function documentDrain({ registry, security }: AdminDoc): void {
  registry.registerPath({
    method: 'delete',
    path: '/operators/{id}',
    summary: 'Decommission an operator (drain, then soft delete)',
    description:
      'Starts the drain workflow: DRAINING and operator.config.draining, then, once every connector instance that reported within DRAIN_INSTANCE_WINDOW_S has reported inflight = 0 in a report stamped after the drain began (an older report never counts; or DRAIN_TIMEOUT_S passes), the soft delete and operator.config.deleted. Answers once the operator is DRAINING; if no worker takes the drain within ONBOARDING_ACCEPT_TIMEOUT_MS, the drain stays queued and the answer shows the operator unchanged.',
    security,
    request: { params: OperatorIdParams },
    responses: {
      202: { ...json('Drain started', WorkflowAccepted), headers: location },
      ...commonErrors,
      404: problem('No such operator'),
      409: problem(
        'Not ACTIVE (a running drain has made it DRAINING), a drain still waiting for a worker (`workflowId`, `workflowUrl`), or a credential rotation running',
      ),
      503: unavailableProblem(
        'A dependency is down (`dependency` names it). When Temporal did not confirm the start, the drain may still have started: read the operator before retrying',
      ),
    },
  });

  registry.registerPath({
    method: 'post',
    path: '/operators/{id}/drain/cancel',
    summary: 'Cancel a drain before its soft delete',
    description: 'The operator is ACTIVE again and operator.config.drain_cancelled is published.',
    security,
    request: { params: OperatorIdParams },
    responses: {
      200: { ...json('The operator, ACTIVE again', Operator), headers: etagHeader },
      ...commonErrors,
      404: problem('No such operator'),
      409: problem('No drain is running, or it has already begun the soft delete'),
      // It takes no body, but the admin app's parser reads a JSON one sent to any POST.
      ...jsonBodyErrors,
      503: unavailableProblem(
        'A dependency is down (`dependency` names it), or the drain workflow did not answer in time; retry',
      ),
    },
  });
}
