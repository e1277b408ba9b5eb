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
 * Where the API leaves a rotation's new password. Apart from onboarding's so that the staging
 * sweep can ask the right workflow (the rotation's) whether an entry is still owned.
 */
export function stagedRotationPath(operatorId: string): string {
  return `${ROTATION_STAGING_FOLDER}/${operatorId}/credentials`;
}

export const ROTATION_STAGING_FOLDER = 'ops/staging/rotations';

export interface SmppCredentials extends Record<string, string> {
  system_id: string;
  password: string;
}
