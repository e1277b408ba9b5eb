/** Vault paths, relative to the KV v2 mount `secret` (README "Internal API and credentials"). */

/** Where the connector reads the operator's SMPP credentials. */
export function credentialsPath(operatorId: string): string {
  return `ops/operators/${operatorId}/credentials`;
}

/**
 * Where the API leaves a new password for a workflow to pick up, so that the password itself
 * never enters a workflow's input or history: the workflow gets only this path's version.
 */
export function stagedCredentialsPath(operatorId: string): string {
  return `${STAGING_FOLDER}/${operatorId}/credentials`;
}

export const STAGING_FOLDER = 'ops/staging/operators';

/**
 * Where the API leaves a rotation's new password: an entry of the request's own (`key`), so that
 * two requests, or a request and the staging sweep, never share one. Apart from onboarding's so
 * that the sweep asks the right workflow (the rotation's) whether an entry is still owned. A run
 * started before entries had keys has none: the operator's entry.
 */
export function stagedRotationPath(operatorId: string, key?: string | null): string {
  return `${ROTATION_STAGING_FOLDER}/${key ? `${operatorId}.${key}` : operatorId}/credentials`;
}

/** An entry of a Vault folder listing, without the trailing `/` a folder's has. */
export const entryName = (entry: string): string => entry.replace(/\/$/, '');

/** The operator and request key of an entry of the rotation staging folder, as Vault lists it. */
export function rotationEntryOf(entry: string): { operatorId: string; key?: string } {
  const [operatorId = '', key] = entryName(entry).split('.');
  return key ? { operatorId, key } : { operatorId };
}

export const ROTATION_STAGING_FOLDER = 'ops/staging/rotations';

export interface SmppCredentials extends Record<string, string> {
  system_id: string;
  password: string;
}
