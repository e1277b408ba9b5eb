import Router from '@koa/router';
import { DEFAULT_TPS_LIMIT, SMPP_LIMITS } from '../domain/operator';
import { TpsLimit } from '../domain/schemas';
import type { OnboardingService } from '../services/onboarding';
import { metadataFields } from './operators';
import { RoutingRuleInput } from './routing-rules';
import { sendAccepted, WorkflowAccepted } from './shared/accepted';
import type { AuthState } from './shared/auth';
import { z } from './shared/http';
import {
  bodyTooLarge,
  undecodableBody,
  commonErrors,
  json,
  location,
  problem,
  unavailableProblem,
  type AdminDoc,
} from './shared/openapi';
import { parse } from './shared/validate';

/** POST /operators: onboarding, a workflow that ends with the operator ACTIVE or ONBOARDING_FAILED. */

/** The SMPP password: written to Vault only, never echoed, logged or kept. */
export const SmppPassword = z
  .string()
  .min(1)
  .max(SMPP_LIMITS.password)
  .openapi({ format: 'password', writeOnly: true });

export const CreateOperatorRequest = z
  .strictObject({
    ...metadataFields,
    password: SmppPassword,
    systemType: metadataFields.systemType.default(''),
    tls: metadataFields.tls.default(false),
    windowSize: metadataFields.windowSize.default(10),
    enquireLinkIntervalS: metadataFields.enquireLinkIntervalS.default(30),
    labels: metadataFields.labels.default({}),
    tpsLimit: TpsLimit.default(DEFAULT_TPS_LIMIT),
    routingRules: z.array(RoutingRuleInput).max(100).default([]),
  })
  .openapi('CreateOperatorRequest');

export function createOnboardingRouter(onboarding: OnboardingService): Router<AuthState> {
  const router = new Router<AuthState>();
  router.post('/operators', async (ctx) => {
    const { password, tpsLimit, routingRules, ...metadata } = parse(CreateOperatorRequest, ctx.request.body, 'body');
    const started = await onboarding.start({ metadata, password, tpsLimit, routingRules }, ctx.state.actor);
    sendAccepted(ctx, started, `/v1/admin/operators/${started.operator.id}`);
  });
  return router;
}

export function documentOnboarding({ registry, security }: AdminDoc): void {
  registry.registerPath({
    method: 'post',
    path: '/operators',
    summary: 'Onboard an operator',
    description:
      'Stores the password in Vault and starts the onboarding workflow. Answers once the operator is saved (status ONBOARDING). A live operator with the same host, port and systemId is a 409 naming it.',
    security,
    request: {
      body: { content: { 'application/json': { schema: CreateOperatorRequest } } },
    },
    responses: {
      202: { ...json('Onboarding started', WorkflowAccepted), headers: location },
      ...commonErrors,
      409: problem('Duplicate operator (`existingOperatorId`)'),
      413: bodyTooLarge(
        'the operator.config.created event of this operator would not fit a NATS message (`errors` names the field)',
      ),
      415: undecodableBody,
      422: problem(
        'A rule that cannot be applied (validUntil not after validFrom, a prefix table that does not exist); `errors` names the field',
      ),
      503: unavailableProblem(
        'A dependency is down (`dependency` names it), or no worker saved the operator in time. When Temporal did not confirm the start, the onboarding may have started all the same (a retry then answers 409); if it did not, its staged password stays in Vault until a staging sweep finds it more than 10 minutes old',
      ),
    },
  });
}
