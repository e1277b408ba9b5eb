import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Redaction is a second line of defence: code never logs a password on purpose, but a request
 * body or an error object that carries one must not reach the log either.
 */
const redactPaths = [
  'password',
  '*.password',
  '*.*.password',
  'req.headers.authorization',
  'headers.authorization',
  'headers["x-vault-token"]',
  'token',
  '*.token',
];

export function createLogger(level: string, name = 'operator-management'): Logger {
  return pino({ name, level, redact: { paths: redactPaths, censor: '[redacted]' } });
}
