import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { isWorkflowRunning } from '../clients/temporal';
import { VaultError, type KvStore } from '../clients/vault';
import {
  ROTATION_STAGING_FOLDER,
  STAGING_FOLDER,
  entryName,
  rotationEntryOf,
  stagedCredentialsPath,
  stagedRotationPath,
} from '../domain/credentials';
import { workflowIds } from '../domain/workflow-ids';
import { unavailable } from './shared/errors';
import type { Logger } from '../platform/logger';

/**
 * Where a request leaves a new password for its workflow: Vault's staging paths, so that the
 * password never enters a workflow's input or history (the workflow gets only the version). A
 * running workflow owns its staged entry and clears it; what nobody owns is swept.
 */

/** Far beyond the longest accept timeout (60 s): a younger entry may belong to a request in flight. */
export const STAGED_SECRET_MAX_AGE_MS = 10 * 60 * 1000;

/**
 * Each staging folder: a request's new entry, what an entry the folder lists belongs to, and the
 * workflow that owns it. An onboarding's operator id is new with each request, so its entry is
 * the request's own; a rotation's entry carries a key of the request's.
 */
const STAGINGS = {
  onboarding: {
    folder: STAGING_FOLDER,
    owner: workflowIds.onboarding,
    newEntry: (operatorId: string) => ({ path: stagedCredentialsPath(operatorId) }),
    listed: (entry: string) => {
      const operatorId = entryName(entry);
      return { operatorId, path: stagedCredentialsPath(operatorId) };
    },
  },
  rotation: {
    folder: ROTATION_STAGING_FOLDER,
    owner: workflowIds.rotation,
    newEntry: (operatorId: string) => {
      const key = randomUUID();
      return { key, path: stagedRotationPath(operatorId, key) };
    },
    listed: (entry: string) => {
      const { operatorId, key } = rotationEntryOf(entry);
      return { operatorId, path: stagedRotationPath(operatorId, key) };
    },
  },
};

export interface StagedPassword {
  /** The Vault version the workflow reads: a reference, never the password. */
  version: number;
  /** The request's own entry, for a rotation (stagedRotationPath). */
  key?: string;
  /** Removes the entry; for a workflow that certainly never started. Logs, never throws. */
  discard(): Promise<void>;
}

export async function stagePassword(
  kv: KvStore,
  log: Logger,
  purpose: keyof typeof STAGINGS,
  operatorId: string,
  credentials: { system_id: string; password: string },
): Promise<StagedPassword> {
  const entry: { path: string; key?: string } = STAGINGS[purpose].newEntry(operatorId);
  const { path } = entry;
  const version = await kv.write(path, credentials).catch((err: unknown) => {
    if (!(err instanceof VaultError)) throw err;
    // A refusal too (a token expired or stripped of its policy, a mount gone): the request was
    // right and cannot go on until Vault is set right, as for a credentials read. The error
    // carries neither token nor password.
    log.warn({ err: err.message, operatorId, purpose }, 'staging the password in Vault failed');
    throw unavailable('Vault', 'The credentials store is unavailable; nothing was started. Retry later.');
  });
  return {
    version,
    ...(entry.key === undefined ? {} : { key: entry.key }),
    discard: () =>
      kv
        .destroy(path)
        .catch((err: unknown) => log.error({ err: (err as Error).message, operatorId }, 'staged secret left behind')),
  };
}

/**
 * Destroys staged passwords nobody will pick up: older than `maxAgeMs` and with no running
 * onboarding (or, for a rotation's entry, rotation) workflow for their operator. They exist
 * when the API process died between staging a password and starting its workflow, or when
 * Temporal never confirmed a start.
 */
export async function sweepStagedCredentials(
  kv: KvStore,
  temporal: Client,
  options: { maxAgeMs?: number; onlyOperators?: readonly string[] } = {},
): Promise<string[]> {
  const maxAgeMs = options.maxAgeMs ?? STAGED_SECRET_MAX_AGE_MS;
  const swept: string[] = [];
  for (const staging of Object.values(STAGINGS)) {
    for (const entry of await kv.list(staging.folder)) {
      const { operatorId, path } = staging.listed(entry);
      if (options.onlyOperators && !options.onlyOperators.includes(operatorId)) continue;
      const updatedAt = await kv.updatedAt(path);
      if (!updatedAt || Date.now() - updatedAt.getTime() < maxAgeMs) continue;
      if (await isWorkflowRunning(temporal, staging.owner(operatorId))) continue;
      await kv.destroy(path);
      swept.push(operatorId);
    }
  }
  return swept;
}
