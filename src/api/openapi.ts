import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import {
  CreateOperatorRequest,
  ListOperatorsQuery,
  OnboardingAccepted,
  Operator,
  OperatorIdParams,
  OperatorPage,
  PatchOperatorRequest,
  Problem,
  WorkflowRuns,
} from './schemas';

/** The admin API's OpenAPI document, generated from the very schemas the routes validate with. */

const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: Problem } },
});
const json = <T extends z.ZodType>(description: string, schema: T) => ({
  description,
  content: { 'application/json': { schema } },
});
const etag = z.string().openapi({ description: 'The operator version, quoted', example: '"3"' });
const etagHeader = { ETag: { description: 'The operator version, quoted', schema: { type: 'string' as const } } };
const commonErrors = {
  400: problem('Invalid input; `errors` names each field'),
  401: problem('Missing, invalid or expired token'),
  403: problem('The token lacks the admin scope'),
};

export function buildAdminOpenApi(): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  const registry = new OpenAPIRegistry();
  const bearer = registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
  });
  const security = [{ [bearer.name]: [] }];

  registry.registerPath({
    method: 'post',
    path: '/operators',
    summary: 'Onboard an operator',
    description:
      'Stores the password in Vault and starts the onboarding workflow. Answers once the operator is saved (status ONBOARDING). A live operator with the same host, port and systemId is a 409 naming it.',
    security,
    request: {
      headers: z.object({ 'Idempotency-Key': z.string().max(200).optional() }),
      body: { content: { 'application/json': { schema: CreateOperatorRequest } } },
    },
    responses: {
      202: { ...json('Onboarding started', OnboardingAccepted), headers: { Location: { schema: { type: 'string' } } } },
      ...commonErrors,
      409: problem('Duplicate operator (`existingOperatorId`) or Idempotency-Key in progress'),
      422: problem('Idempotency-Key reused with another body'),
      503: problem('No worker saved the operator in time; the onboarding was cancelled and left nothing behind'),
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/operators',
    summary: 'List operators',
    security,
    request: { query: ListOperatorsQuery },
    responses: { 200: json('A page of operators', OperatorPage), ...commonErrors },
  });

  registry.registerPath({
    method: 'get',
    path: '/operators/{id}',
    summary: 'Get an operator with its TPS limit',
    security,
    request: { params: OperatorIdParams },
    responses: {
      200: { ...json('The operator', Operator), headers: etagHeader },
      ...commonErrors,
      404: problem('No such operator'),
    },
  });

  registry.registerPath({
    method: 'patch',
    path: '/operators/{id}',
    summary: 'Change operator metadata',
    description: 'Bumps the version and publishes operator.config.updated. Credentials change only by rotation.',
    security,
    request: {
      params: OperatorIdParams,
      headers: z.object({ 'If-Match': etag.optional() }),
      body: { content: { 'application/json': { schema: PatchOperatorRequest } } },
    },
    responses: {
      200: { ...json('The changed operator', Operator), headers: etagHeader },
      ...commonErrors,
      404: problem('No such operator'),
      409: problem('The new endpoint belongs to another operator, or the operator can no longer change'),
      412: problem('If-Match does not match the current version'),
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/operators/{id}/workflows',
    summary: "The operator's workflow runs with Temporal UI links",
    security,
    request: { params: OperatorIdParams },
    responses: { 200: json('Workflow runs', WorkflowRuns), ...commonErrors, 404: problem('No such operator') },
  });

  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'operator-management-service admin API',
      version: '1.0.0',
      description: 'Admin REST API behind Kong. Errors are application/problem+json (RFC 9457).',
    },
    servers: [{ url: '/v1/admin' }],
  });
}
