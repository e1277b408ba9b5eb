import pino from 'pino';
import { currentRequestId } from './request-context';

export type Logger = pino.Logger;

/**
 * A second line of defence: code never logs a password on purpose, but a request body or an
 * error object that carries one must not reach the log either. Every logged object (errors
 * inside it too) and every child logger's bindings are scrubbed of secret-named keys at any
 * depth. pino's own path redaction is not used: the scrub covers every path it could name, and
 * its wildcard paths took a third of the credentials read's rate (README, Operations). What the
 * formatter does not see is scrubbed where it enters: values interpolated into a message (`%j`),
 * a child's bindings and setBindings; a serializer scrubs its own output (scrubbedError below).
 */
const CENSOR = '[redacted]';
/** Keys whose values are secrets wherever they sit in a logged error (a client's request, its options). */
const SECRET_KEY = /password|passwd|secret|token|authorization|cookie/i;
const MAX_DEPTH = 10;

/** A flat object of primitives with no secret-named key (most lines: a request's, an audit's): nothing to copy. */
function isClean(value: object): boolean {
  if (Array.isArray(value) || ArrayBuffer.isView(value) || value instanceof Error) return false;
  for (const key of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[key];
    if (SECRET_KEY.test(key) || (v !== null && typeof v === 'object')) return false;
  }
  return true;
}

/** Every secret-named key censored, at any depth: a copy, or the value itself when it is clean. */
function scrub(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (depth === 0 && value !== null && typeof value === 'object' && isClean(value)) return value;
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
    serializers: { err: scrubbedError, error: scrubbedError },
    // Every logged object, whatever its keys and depth. It arrives here as a fresh plain copy
    // (pino merges it into the mixin's object), so the clean fast path reads plain values.
    formatters: { log: (object) => scrub(object) as Record<string, unknown> },
    hooks: {
      // The arguments after the message (`%j`, `%o`) are written without the formatter.
      logMethod(args, method) {
        const first = typeof args[0] === 'string' ? 1 : 2;
        for (let i = first; i < args.length; i++) args[i] = scrub(args[i]) as never;
        return method.apply(this, args);
      },
    },
    // Every line written for a request, or for an activity of a workflow it started, names it.
    mixin() {
      const requestId = currentRequestId();
      return requestId === undefined ? {} : { requestId };
    },
  };
  const logger = destination ? pino(options, destination) : pino(options);
  // pino writes a child's bindings through no formatter: they are scrubbed here (a copy first:
  // pino reads each value again), and a child's children inherit these methods.
  const bound = (bindings: pino.Bindings) => scrub({ ...bindings }) as pino.Bindings;
  const { child, setBindings } = logger;
  logger.child = function (this: Logger, bindings, childOptions) {
    return child.call(this, bound(bindings), childOptions);
  } as Logger['child'];
  logger.setBindings = function (this: Logger, bindings) {
    setBindings.call(this, bound(bindings));
  };
  return logger;
}

/** Bytes of log lines gathered before a write, and the longest a line waits for one. */
export const LOG_BATCH = { bytes: 4096, ms: 100 } as const;

/**
 * Where a process writes its log (a file descriptor or a path): lines gathered in the
 * background and written together, up to LOG_BATCH.bytes at a time and at the latest
 * LOG_BATCH.ms after the first. A write per line cost each request a system call and a
 * thread-pool hop per line (two on a credentials read: the request's and its audit line). pino
 * writes what is still gathered when the process exits, an uncaught error included; a process
 * killed outright (SIGKILL, out of memory) loses at most the last LOG_BATCH.ms of lines.
 */
export function logDestination(dest: number | string): pino.DestinationStream {
  return pino.destination({ dest, sync: false, minLength: LOG_BATCH.bytes, periodicFlush: LOG_BATCH.ms });
}
