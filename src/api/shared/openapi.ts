import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { z } from './http';

/**
 * Helpers for the admin API's OpenAPI document. Each capability's router file documents its own
 * paths with them; src/api/admin-app.ts assembles the document from the very schemas the routes
 * validate with, so the two cannot drift.
 */

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  })
  .catchall(z.unknown())
  .openapi('Problem', { description: 'RFC 9457 problem details' });

export const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: Problem } },
});
export const json = <T extends z.ZodType>(description: string, schema: T) => ({
  description,
  content: { 'application/json': { schema } },
});
export const location = { Location: { schema: { type: 'string' as const } } };
export const etagHeader = {
  ETag: { description: 'The operator version, quoted', schema: { type: 'string' as const } },
};
export const ifMatch = z.object({
  'If-Match': z.string().openapi({ description: 'The operator version, quoted', example: '"3"' }).optional(),
});
export const idempotencyKey = z.object({ 'Idempotency-Key': z.string().max(200).optional() });
export const commonErrors = {
  400: problem('Invalid input; `errors` names each field'),
  401: problem('Missing, invalid or expired token'),
  403: problem('The token lacks the admin scope'),
};

/** Where a capability documents its paths; `security` is the admin bearer token. */
export interface AdminDoc {
  registry: OpenAPIRegistry;
  security: Array<Record<string, string[]>>;
}

export function buildOpenApi(document: (doc: AdminDoc) => void): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  const registry = new OpenAPIRegistry();
  const bearer = registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
  });
  document({ registry, security: [{ [bearer.name]: [] }] });
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
