import type { Dependency } from '../../clients/dependency-errors';

/** Failures a service reports; the API maps each to one HTTP status and problem type. */

export interface FieldError {
  field: string;
  message: string;
}

export class ServiceError extends Error {
  constructor(
    readonly kind:
      | 'validation'
      | 'unprocessable'
      | 'not_found'
      | 'conflict'
      | 'precondition_failed'
      | 'precondition_required'
      | 'too_large'
      | 'unavailable',
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ServiceError';
  }
}

export const validationFailed = (errors: FieldError[]) =>
  new ServiceError('validation', 'The request has invalid fields.', { errors });
/**
 * Fields each well-formed that cannot be applied: a rule between fields the document's schemas
 * cannot state, or a name of something that does not exist (422; a 400 is what the schemas refuse).
 */
export const unprocessable = (errors: FieldError[]) =>
  new ServiceError('unprocessable', 'The request has fields that cannot be applied.', { errors });
export const notFound = (what: string) => new ServiceError('not_found', `${what} was not found.`);
export const conflict = (message: string, extra: Record<string, unknown> = {}) =>
  new ServiceError('conflict', message, extra);
export const staleVersion = (current: number) =>
  new ServiceError('precondition_failed', `If-Match does not match the current version ${current}.`, {
    currentVersion: current,
  });
/** A dependency down or too slow: a 503 that names it (`dependency`), with Retry-After. */
export const unavailable = (dependency: Dependency, message: string, extra: Record<string, unknown> = {}) =>
  new ServiceError('unavailable', message, { dependency, ...extra });
export const duplicateOperator = (existingOperatorId: string | null) =>
  conflict(
    `An operator with this host, port and systemId already exists${existingOperatorId ? `: ${existingOperatorId}` : ''}.`,
    { existingOperatorId },
  );
/**
 * The versions a write may change (the strong ETags of If-Match; none when every tag listed is
 * weak or no version), or `any` (`If-Match: *`).
 */
export type ExpectedVersion = 'any' | { versions: readonly number[] };

/** Throws 412 unless the current version is one the write expects. */
export function checkVersion(expected: ExpectedVersion, current: number): void {
  if (expected !== 'any' && !expected.versions.includes(current)) throw staleVersion(current);
}

export const preconditionRequired = () =>
  new ServiceError('precondition_required', 'This write needs If-Match with the version (ETag) it changes.');
