import { ApplicationFailure } from '@temporalio/activity';
import { VaultError, type KvStore } from '../clients/vault';
import { credentialsPath, stagedCredentialsPath, type SmppCredentials } from '../domain/credentials';
import { CREDENTIALS_NOT_STAGED, VAULT_REJECTED } from '../domain/failures';

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
  };
}

export type VaultActivities = ReturnType<typeof createVaultActivities>;
