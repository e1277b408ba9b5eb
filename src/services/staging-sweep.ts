import type { Client } from '@temporalio/client';
import type { KvStore } from '../clients/vault';
import {
  ROTATION_STAGING_FOLDER,
  STAGING_FOLDER,
  stagedCredentialsPath,
  stagedRotationPath,
} from '../domain/credentials';
import { workflowIds } from '../domain/workflow-ids';
import { isWorkflowRunning } from '../clients/temporal';

/** Far beyond the longest accept timeout (60 s): a younger entry may belong to a request in flight. */
export const STAGED_SECRET_MAX_AGE_MS = 10 * 60 * 1000;

/** Each staging folder, with the path of an operator's entry and the workflow that owns it. */
const STAGINGS = [
  { folder: STAGING_FOLDER, path: stagedCredentialsPath, owner: workflowIds.onboarding },
  { folder: ROTATION_STAGING_FOLDER, path: stagedRotationPath, owner: workflowIds.rotation },
];

/**
 * Destroys staged passwords nobody will pick up: older than `maxAgeMs` and with no running
 * onboarding (or, for a rotation's entry, rotation) workflow for their operator. They exist only
 * when the API process died between staging a password and starting its workflow; a running
 * workflow owns its staged entry and cleans it up itself.
 */
export async function sweepStagedCredentials(
  kv: KvStore,
  temporal: Client,
  options: { maxAgeMs?: number; onlyOperators?: readonly string[] } = {},
): Promise<string[]> {
  const maxAgeMs = options.maxAgeMs ?? STAGED_SECRET_MAX_AGE_MS;
  const swept: string[] = [];
  for (const staging of STAGINGS) {
    for (const entry of await kv.list(staging.folder)) {
      const operatorId = entry.replace(/\/$/, '');
      if (options.onlyOperators && !options.onlyOperators.includes(operatorId)) continue;
      const path = staging.path(operatorId);
      const updatedAt = await kv.updatedAt(path);
      if (!updatedAt || Date.now() - updatedAt.getTime() < maxAgeMs) continue;
      if (await isWorkflowRunning(temporal, staging.owner(operatorId))) continue;
      await kv.destroy(path);
      swept.push(operatorId);
    }
  }
  return swept;
}
