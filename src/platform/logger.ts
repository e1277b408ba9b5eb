import pino from 'pino';
import { currentRequestId } from './request-context';

export type Logger = pino.Logger;

/**
 * Redaction is a second line of defence: code never logs a password on purpose, but a request
 * body or an error object that carries one must not reach the log either. Plain objects are
 * redacted by path, and every logged object (errors inside it too) is scrubbed of secret-named
 * keys at any depth.
 */
const redactPaths = [
  'password',
  '*.password',
  '*.*.password',
  '*.*.*.password',
  '*.*.*.*.password',
  'authorization',
  '*.authorization',
  '*.*.authorization',
  '*.*.*.authorization',
  'headers["x-vault-token"]',
  '*.headers["x-vault-token"]',
  'token',
  '*.token',
  '*.*.token',
];

const CENSOR = '[redacted]';
/** Keys whose values are secrets wherever they sit in a logged error (a client's request, its options). */
const SECRET_KEY = /password|passwd|secret|token|authorization|cookie/i;
const MAX_DEPTH = 10;

/** A copy of a value with every secret-named key censored, at any depth (redact paths stop at two). */
function scrub(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value) || depth > MAX_DEPTH) return '[omitted]';
  seen.add(value);
  if (value instanceof Error) return scrub(pino.stdSerializers.err(value), depth, seen);
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1, seen));
  if (ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, SECRET_KEY.test(k) ? CENSOR : scrub(v, depth + 1, seen)]),
  );
}

/** pino's error serializer (message, stack, own fields), then scrubbed: a client's error may hold its request. */
const scrubbedError = (err: unknown) => scrub(err instanceof Error ? pino.stdSerializers.err(err) : err);

export function createLogger(
  level: string,
  name = 'operator-management',
  destination?: pino.DestinationStream,
): Logger {
  const options: pino.LoggerOptions = {
    name,
    level,
    redact: { paths: redactPaths, censor: CENSOR },
    serializers: { err: scrubbedError, error: scrubbedError },
    // Every logged object, whatever its keys and depth (the paths above stop at four levels).
    formatters: { log: (object) => scrub(object) as Record<string, unknown> },
    // Every line written for a request, or for an activity of a workflow it started, names it.
    mixin() {
      const requestId = currentRequestId();
      return requestId === undefined ? {} : { requestId };
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
