import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { BODY_ENCODINGS, BODY_ENCODINGS_TEXT, JSON_BODY_LIMIT_BYTES } from './json-body';
import { REQUEST_ID_PATTERN } from '../../platform/request-context';
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
/** The ETag header of an answer: the version of `what`, quoted. */
export const versionEtag = (what: string) => ({
  ETag: { description: `The ${what} version, quoted`, schema: { type: 'string' as const } },
});
export const etagHeader = versionEtag('operator');
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
export const commonErrors = {
  400: problem(
    'Invalid input; `errors` names each field (a body that is not JSON, or could not be read whole or decoded, has none)',
  ),
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

/** The 413 of a route with a JSON body; `more` names what else the route refuses with a 413. */
export const bodyTooLarge = (more?: string) =>
  problem(
    `The JSON body is larger than ${JSON_BODY_LIMIT_BYTES} bytes${more ? `, or ${more}` : ''}; nothing was written`,
  );

/** The 415 of a route whose JSON body the parser reads: it decodes gzip, deflate and br. */
export const undecodableBody = problem(
  `The body is sent in a Content-Encoding the server does not decode (it takes ${BODY_ENCODINGS_TEXT}); nothing was written`,
);

/** What every admin route that takes a JSON body (POST, PUT, PATCH) may answer besides `commonErrors`. */
export const jsonBodyErrors = {
  413: bodyTooLarge(),
  415: undecodableBody,
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
  /** What a listener's own middleware adds to the generated operations (before X-Request-Id goes on every answer). */
  amend?: (generated: OpenApiDocument) => void,
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
  const generated = new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: { title: listener.title, version: '1.0.0', description: listener.description },
    servers: [{ url: listener.server }],
  });
  amend?.(generated);
  documentBodyEncoding(generated);
  documentRequestId(generated);
  return generated;
}

/** One operation of a generated document, as the passes that amend every operation see it. */
export interface OperationDoc {
  requestBody?: { content?: Record<string, unknown> };
  parameters?: Array<{ name: string; in: string; required?: boolean; description?: string; schema: unknown }>;
  responses: Record<string, { description: string; headers?: Record<string, unknown>; content?: unknown }>;
}

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

/**
 * Calls `amend` on every operation of a generated document. What a middleware adds to every
 * route (a header, an answer) is written once this way, so that no route's own part can forget it.
 */
export function eachOperation(
  document: OpenApiDocument,
  amend: (operation: OperationDoc, method: string, path: string) => void,
): void {
  const paths = (document.paths ?? {}) as Record<string, Record<string, OperationDoc>>;
  for (const [path, item] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(item)) {
      // A path item also holds `parameters`, `summary`…: only its operations are amended.
      if (HTTP_METHODS.has(method)) amend(operation, method, path);
    }
  }
}

/** A problem+json answer in a generated document (the registered Problem schema, by reference). */
export const problemDoc = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

/** BODY_ENCODINGS in any case (content codings are case-insensitive, RFC 9110 8.4.1), or empty. */
const BODY_ENCODING_PATTERN = `^(${BODY_ENCODINGS.map((coding) =>
  [...coding].map((c) => `[${c}${c.toUpperCase()}]`).join(''),
).join('|')})?$`;

/**
 * A JSON body may come compressed on every route that reads one (src/api/shared/json-body.ts
 * decodes it; the entries import, src/api/prefix-tables-body.ts, its CSV or JSON alike):
 * `Content-Encoding` on each, unless the route names it itself.
 */
function documentBodyEncoding(document: OpenApiDocument): void {
  eachOperation(document, (operation) => {
    if (!operation.requestBody?.content?.['application/json']) return;
    if (operation.parameters?.some((p) => p.in === 'header' && p.name.toLowerCase() === 'content-encoding')) return;
    operation.parameters = [
      ...(operation.parameters ?? []),
      {
        name: 'Content-Encoding',
        in: 'header',
        required: false,
        description: `How the body is compressed, if it is: ${BODY_ENCODINGS_TEXT}, in any case; empty is none (any other is a 415)`,
        schema: { type: 'string', pattern: BODY_ENCODING_PATTERN },
      },
    ];
  });
}

/**
 * Every request of both listeners may carry `X-Request-Id` and every answer has one
 * (src/api/shared/request-log.ts): a sane id comes back as sent, any other value is replaced by a
 * new UUID, never refused.
 */
function documentRequestId(document: OpenApiDocument): void {
  eachOperation(document, (operation) => {
    operation.parameters = [
      ...(operation.parameters ?? []),
      {
        name: 'X-Request-Id',
        in: 'header',
        required: false,
        description: `The caller's request id, echoed and logged when it matches ${REQUEST_ID_PATTERN.source}; any other value is replaced by a new UUID`,
        schema: { type: 'string' },
      },
    ];
    for (const response of Object.values(operation.responses)) {
      response.headers = { ...response.headers, 'X-Request-Id': { $ref: '#/components/headers/X-Request-Id' } };
    }
  });
  document.components = {
    ...document.components,
    headers: {
      ...document.components?.headers,
      'X-Request-Id': {
        description: "The request's id (the caller's, or a new UUID): in every log line written for it",
        schema: { type: 'string', pattern: REQUEST_ID_PATTERN.source },
      },
    },
  };
}

/** A 503 an operation says more about, with the Retry-After every 503 carries. */
export const unavailableProblem = (description: string) => ({
  ...problem(description),
  headers: commonErrors[503].headers,
});
