import Router from '@koa/router';
import type { RotationService } from '../services/rotation';
import { SmppPassword } from './onboarding';
import { sendAccepted, WorkflowAccepted } from './shared/accepted';
import type { AuthState } from './shared/auth';
import { OperatorIdParams, z } from './shared/http';
import {
  commonErrors,
  json,
  jsonBodyErrors,
  location,
  problem,
  unavailableProblem,
  type AdminDoc,
} from './shared/openapi';
import { parse } from './shared/validate';

/** POST /operators/{id}/credentials/rotate: the credential-rotation workflow. */

export const RotateCredentialsRequest = z.strictObject({ password: SmppPassword }).openapi('RotateCredentialsRequest');

export function createRotationRouter(rotation: RotationService): Router<AuthState> {
  const router = new Router<AuthState>();
  router.post('/operators/:id/credentials/rotate', async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const { password } = parse(RotateCredentialsRequest, ctx.request.body, 'body');
    const started = await rotation.start(id, password, ctx.state.actor);
    sendAccepted(ctx, started, `/v1/admin/operators/${id}/workflows`);
  });
  return router;
}

export function documentRotation({ registry, security }: AdminDoc): void {
  registry.registerPath({
    method: 'post',
    path: '/operators/{id}/credentials/rotate',
    summary: "Rotate an operator's SMPP password",
    description:
      "Stores the new password in Vault and starts the credential-rotation workflow: a new Vault version (check-and-set), operator.config.credentials_rotated (state pending), then, once the connector reports UP with that version, credentials_rotated (state current). On AUTH_FAILED, ROTATION_BIND_TIMEOUT_S or cancellation the previous version stays current and operator.config.credentials_rolled_back is published. Location is the operator's workflow list.",
    security,
    request: {
      params: OperatorIdParams,
      body: { content: { 'application/json': { schema: RotateCredentialsRequest } } },
    },
    responses: {
      202: { ...json('Rotation started', WorkflowAccepted), headers: location },
      ...commonErrors,
      ...jsonBodyErrors,
      404: problem('No such operator'),
      409: problem(
        'A rotation is already running (`workflowId`, `workflowUrl`), the operator is not ACTIVE, or a drain runs',
      ),
      503: unavailableProblem(
        'A dependency is down (`dependency` names it). When Temporal did not confirm the start, the rotation may have started all the same (a retry then answers 409 naming it); if it did not, its staged password stays in Vault until a staging sweep finds it more than 10 minutes old',
      ),
    },
  });
}
