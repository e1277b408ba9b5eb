import type { IncomingMessage } from 'node:http';
import { bodyParser } from '@koa/bodyparser';
import type { Middleware } from 'koa';
import { HttpProblem } from './problem';

/**
 * The admin API's limit on a JSON body (src/api/admin-app.ts); the internal health report has its
 * own, smaller one.
 */
export const JSON_BODY_LIMIT_BYTES = 1024 * 1024;

/** A body that does not parse as JSON: the parser's message is not repeated (it quotes the body). */
export const notJson = () => new HttpProblem(400, 'Bad request', 'The request body is not valid JSON.');

/** The Content-Encodings a request body may come in, here and in the prefix import. */
export const BODY_ENCODINGS = ['identity', 'gzip', 'deflate', 'br'] as const;
/** "identity, gzip, deflate and br", for documents and answers. */
export const BODY_ENCODINGS_TEXT = `${BODY_ENCODINGS.slice(0, -1).join(', ')} and ${BODY_ENCODINGS.at(-1)}`;

export const unsupportedEncoding = () =>
  new HttpProblem(
    415,
    'Unsupported media type',
    `The body is sent in a Content-Encoding the server does not decode; it takes ${BODY_ENCODINGS_TEXT}.`,
  );

const notAsEncoded = () =>
  new HttpProblem(400, 'Bad request', 'The request body could not be decoded as its Content-Encoding says.');

const notReadWhole = () => new HttpProblem(400, 'Bad request', 'The request body could not be read whole.');

export type BodyEncoding = (typeof BODY_ENCODINGS)[number];

/**
 * The request's Content-Encoding as both parsers read it: without the spaces and tabs around it
 * (HTTP's whitespace, nothing else) and lower-cased (content codings are case-insensitive, RFC
 * 9110 8.4.1), `identity` when there is none.
 */
export function contentEncodingOf(req: IncomingMessage): string {
  return (req.headers['content-encoding'] || 'identity').replace(/^[ \t]+|[ \t]+$/g, '').toLowerCase();
}

/** A body the client spoiled: not as its encoding says, or cut short by the client going away. */
export function bodyReadProblem(err: unknown): HttpProblem | undefined {
  if (isDecodingError(err)) return notAsEncoded();
  if (isCutShort(err)) return notReadWhole();
  return undefined;
}

/** The request's own stream failed: the client went away (or reset) in the middle of its body. */
function isCutShort(err: unknown): boolean {
  const { code } = (err ?? {}) as { code?: unknown };
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/**
 * zlib's error for a body that is not what its Content-Encoding says: Z_DATA_ERROR, Z_BUF_ERROR
 * (gzip, deflate, and brotli cut short), ERR__ERROR_FORMAT_… (brotli's own).
 */
function isDecodingError(err: unknown): boolean {
  const { code } = (err ?? {}) as { code?: unknown };
  return typeof code === 'string' && (code.startsWith('Z_') || code.startsWith('ERR__ERROR_'));
}

/**
 * The JSON body parser of both listeners: the body of a POST, PUT or PATCH sent as
 * `application/json` (never a DELETE's), at most `limitBytes`; a body of another type is not
 * read (the parser would take `application/*+json` types too, which the OpenAPI documents do not
 * offer). Whatever keeps a body from being read is the client's: a problem that says which,
 * never a 500, and never the body quoted (the parser's messages quote it, and it may hold a
 * password).
 */
export function jsonBody(limitBytes: number): Middleware {
  const parser = bodyParser({
    enableTypes: ['json'],
    jsonLimit: limitBytes,
    onError: (err) => {
      throw unreadableBody(err, limitBytes);
    },
  });
  return (ctx, next) => {
    if (!ctx.is('application/json')) return next();
    // The parser (inflation) matches the coding exactly: `GZIP` would be a 415 here, not in the import.
    if (ctx.req.headers['content-encoding'] !== undefined)
      ctx.req.headers['content-encoding'] = contentEncodingOf(ctx.req);
    return parser(ctx, next);
  };
}

function unreadableBody(err: unknown, limitBytes: number): unknown {
  const { status } = (err ?? {}) as { status?: unknown };
  if (status === 413)
    return new HttpProblem(413, 'Content too large', `The JSON body is larger than ${limitBytes} bytes.`);
  // inflation's, for a Content-Encoding it has no decoder for.
  if (status === 415) return unsupportedEncoding();
  if (err instanceof SyntaxError) return notJson();
  // raw-body's 400: the client went away, or sent more or less than its Content-Length.
  return bodyReadProblem(err) ?? (status === 400 ? notReadWhole() : err);
}
