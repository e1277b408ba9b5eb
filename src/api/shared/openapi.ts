import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { IF_MATCH_PATTERN, z } from './http';

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
/** `*` or a list of entity-tags (RFC 9110 13.1.1), as `parseIfMatch` reads it. */

export const ifMatch = z.object({
  'If-Match': z
    .string()
    .regex(IF_MATCH_PATTERN)
    .openapi({
      description:
        'The version this write changes, as an ETag ("3"), a list of ETags (one must be the current version; weak ones never match), or *',
      example: '"3"',
    })
    .optional(),
});
export const idempotencyKey = z.object({ 'Idempotency-Key': z.string().max(200).optional() });
export const commonErrors = {
  400: problem('Invalid input; `errors` names each field'),
  401: problem('Missing, invalid or expired token'),
  403: problem('The token lacks the admin scope'),
  // Any operation may meet a dependency that is down; an operation with its own 503 says more.
  503: {
    ...problem(
      'A dependency is down or too slow: `dependency` names it; nothing was written. Retry after Retry-After seconds',
    ),
    headers: {
      'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer' as const } },
    },
  },
};

/** Where a capability documents its paths; `security` is the admin bearer token. */
export interface AdminDoc {
  registry: OpenAPIRegistry;
  security: Array<Record<string, string[]>>;
}

export type OpenApiDocument = ReturnType<OpenApiGeneratorV31['generateDocument']>;

/** Builds one listener's document: `bearer` (the admin API behind Kong) or `mtls` (the internal API). */
export function buildOpenApi(
  listener: { title: string; description: string; server: string; auth: 'bearer' | 'mtls' },
  document: (doc: AdminDoc) => void,
): OpenApiDocument {
  const registry = new OpenAPIRegistry();
  const scheme =
    listener.auth === 'bearer'
      ? registry.registerComponent('securitySchemes', 'bearerAuth', {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
        })
      : registry.registerComponent('securitySchemes', 'mutualTLS', {
          type: 'mutualTLS',
          description:
            'A client certificate chaining to the configured CA, with the clientAuth usage and a SAN on the allowlist',
        });
  document({ registry, security: [{ [scheme.name]: [] }] });
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: { title: listener.title, version: '1.0.0', description: listener.description },
    servers: [{ url: listener.server }],
  });
}
