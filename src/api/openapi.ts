import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import {
  CreateOperatorRequest,
  DrainAccepted,
  ListOperatorsQuery,
  OnboardingAccepted,
  Operator,
  OperatorIdParams,
  OperatorPage,
  PatchOperatorRequest,
  Problem,
  RotateCredentialsRequest,
  RotationAccepted,
  WorkflowRuns,
} from './schemas';
import { HealthHistoryQuery, OperatorHealth } from './health';

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

  registry.registerPath({
    method: 'delete',
    path: '/operators/{id}',
    summary: 'Decommission an operator (drain, then soft delete)',
    description:
      'Starts the drain workflow: DRAINING and operator.config.draining, then, once the connector reports nothing in flight (or DRAIN_TIMEOUT_S passes), the soft delete and operator.config.deleted. Answers once the operator is DRAINING; if no worker takes the drain within ONBOARDING_ACCEPT_TIMEOUT_MS, the drain stays queued and the answer shows the operator unchanged.',
    security,
    request: { params: OperatorIdParams },
    responses: {
      202: { ...json('Drain started', DrainAccepted), headers: { Location: { schema: { type: 'string' } } } },
      ...commonErrors,
      404: problem('No such operator'),
      409: problem('Not ACTIVE, a drain already running, or a credential rotation running'),
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
      503: problem('The drain workflow did not answer in time'),
    },
  });

  registry.registerPath({
    method: 'post',
    path: '/operators/{id}/credentials/rotate',
    summary: "Rotate an operator's SMPP password",
    description:
      "Stores the new password in Vault and starts the credential-rotation workflow: a new Vault version (check-and-set), operator.config.credentials_rotated (state pending), then, once the connector reports UP with that version, credentials_rotated (state current). On AUTH_FAILED, ROTATION_BIND_TIMEOUT_S or cancellation the previous version stays current and operator.config.credentials_rolled_back is published. Location is the operator's workflow list.",
    security,
    request: {
      params: OperatorIdParams,
      headers: z.object({ 'Idempotency-Key': z.string().max(200).optional() }),
      body: { content: { 'application/json': { schema: RotateCredentialsRequest } } },
    },
    responses: {
      202: { ...json('Rotation started', RotationAccepted), headers: { Location: { schema: { type: 'string' } } } },
      ...commonErrors,
      404: problem('No such operator'),
      409: problem(
        'A rotation is already running (`workflowId`), the operator is not ACTIVE, or Idempotency-Key in progress',
      ),
      422: problem('Idempotency-Key reused with another body'),
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/operators/{id}/health',
    summary: "The operator's cached health and its latest reports",
    description:
      'The report the routing engine reads from Redis (status UNKNOWN when none arrived for 60 s) and the newest entries of the health log (limit, default 20).',
    security,
    request: { params: OperatorIdParams, query: HealthHistoryQuery },
    responses: { 200: json('Health', OperatorHealth), ...commonErrors, 404: problem('No such operator') },
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
