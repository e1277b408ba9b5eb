import { ApplicationFailure } from '@temporalio/activity';
import { VaultError, type KvStore } from '../clients/vault';
import {
  credentialsPath,
  stagedCredentialsPath,
  stagedRotationPath,
  type SmppCredentials,
} from '../domain/credentials';
import { CONFLICT, CREDENTIALS_NOT_STAGED, NOT_FOUND, VAULT_REJECTED } from '../domain/failures';

/** Vault KV v2 steps. Results carry version numbers only, never the secret. */
export function createVaultActivities(kv: KvStore) {
  async function vault<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      // A refusal (403, 400) will not heal by retrying; an outage or a 5xx might.
      if (err instanceof VaultError && err.permanent)
        throw ApplicationFailure.nonRetryable(err.message, VAULT_REJECTED);
      throw err;
    }
  }

  return {
    /** Moves the staged password to the operator's credentials path as its first version. */
    async storeCredentials(operatorId: string, stagedVersion: number): Promise<number> {
      return vault(async () => {
        const finalPath = credentialsPath(operatorId);
        const current = await kv.currentVersion(finalPath);
        const staged = await kv.read<SmppCredentials>(stagedCredentialsPath(operatorId), stagedVersion);
        if (!staged) {
          // A retry after the move finds the staging path already cleared.
          if (current !== undefined) return current;
          throw ApplicationFailure.nonRetryable(
            `no staged credentials for operator ${operatorId}`,
            CREDENTIALS_NOT_STAGED,
          );
        }
        const version = current ?? (await kv.write(finalPath, staged.data, 0));
        await kv.destroy(stagedCredentialsPath(operatorId));
        return version;
      });
    },

    /** Leaves nothing of the operator's secret behind: every version, staged or stored. */
    async discardCredentials(operatorId: string): Promise<void> {
      await vault(async () => {
        await kv.destroy(stagedCredentialsPath(operatorId));
        await kv.destroy(credentialsPath(operatorId));
      });
    },

    /** The latest Vault version of the operator's credentials: the base of a rotation's check-and-set. */
    async latestCredentialsVersion(operatorId: string): Promise<number> {
      return vault(async () => {
        const version = await kv.currentVersion(credentialsPath(operatorId));
        if (version === undefined) {
          throw ApplicationFailure.nonRetryable(`operator ${operatorId} has no credentials in Vault`, NOT_FOUND);
        }
        return version;
      });
    },

    /**
     * Writes the rotation's staged password as the version right after `baseVersion`
     * (check-and-set), then clears the staging path. A retry finds that version holding the
     * staged data (or the staging cleared) and returns it; any other newer version is a conflict.
     */
    async promoteStagedCredentials(operatorId: string, stagedVersion: number, baseVersion: number): Promise<number> {
      return vault(async () => {
        const finalPath = credentialsPath(operatorId);
        const staging = stagedRotationPath(operatorId);
        const staged = await kv.read<SmppCredentials>(staging, stagedVersion);
        const current = await kv.currentVersion(finalPath);
        if (current !== undefined && current > baseVersion) {
          const next = await kv.read<SmppCredentials>(finalPath, baseVersion + 1);
          // Only this rotation clears its staging path, and only after writing baseVersion + 1.
          if (!staged || (next && sameCredentials(next.data, staged.data))) {
            await kv.destroy(staging);
            return baseVersion + 1;
          }
          throw ApplicationFailure.nonRetryable(
            `the credentials of operator ${operatorId} changed during the rotation (version ${current}, expected ${baseVersion})`,
            CONFLICT,
          );
        }
        if (!staged) {
          throw ApplicationFailure.nonRetryable(
            `no staged credentials for the rotation of operator ${operatorId}`,
            CREDENTIALS_NOT_STAGED,
          );
        }
        const version = await kv.write(finalPath, staged.data, baseVersion);
        await kv.destroy(staging);
        return version;
      });
    },

    /**
     * Makes Vault's latest version hold the password of `goodVersion` again, as a new version
     * (versions only increase). Nothing to do when nothing was written after `baseVersion`, or
     * when the latest version already holds it (a retry).
     */
    async restoreCredentials(operatorId: string, goodVersion: number, baseVersion: number): Promise<number> {
      return vault(async () => {
        const path = credentialsPath(operatorId);
        const current = await kv.currentVersion(path);
        if (current === undefined || current <= baseVersion) return baseVersion;
        const good = await kv.read<SmppCredentials>(path, goodVersion);
        if (!good) {
          throw ApplicationFailure.nonRetryable(
            `credentials version ${goodVersion} of operator ${operatorId} is no longer in Vault`,
            NOT_FOUND,
          );
        }
        const latest = await kv.read<SmppCredentials>(path);
        if (latest && sameCredentials(latest.data, good.data)) return latest.version;
        return kv.write(path, good.data, current);
      });
    },

    /** Removes whatever a rotation staged (its own entry, or one a refused request left). */
    async discardStagedRotation(operatorId: string): Promise<void> {
      await vault(() => kv.destroy(stagedRotationPath(operatorId)));
    },
  };
}

export type VaultActivities = ReturnType<typeof createVaultActivities>;

function sameCredentials(a: SmppCredentials, b: SmppCredentials): boolean {
  return a.system_id === b.system_id && a.password === b.password;
}
