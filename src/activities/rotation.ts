import { ApplicationFailure } from '@temporalio/activity';
import type { Db } from '../clients/postgres';
import type { KvStore } from '../clients/vault';
import { commitChange, findOperator, findPendingCredentialsVersion } from '../db/operators';
import { credentialsPath, stagedRotationPath, type SmppCredentials } from '../domain/credentials';
import { CONFLICT, CREDENTIALS_NOT_STAGED, NOT_FOUND } from '../domain/failures';
import { canRotateCredentials, refusal } from '../domain/lifecycle';
import type { Operator } from '../domain/operator';
import { sameCredentials, vaultStep, withLockedOperator } from './shared';

/**
 * The credential rotation's steps, in PostgreSQL (which version is current or pending) and Vault
 * (the versions themselves). Each is idempotent; results carry version numbers, never the secret.
 */
export function createRotationActivities({ db, kv }: { db: Db; kv: KvStore }) {
  const notRotating = (op: Operator) =>
    ApplicationFailure.nonRetryable(
      refusal(op.id, op.status, 'only an ACTIVE operator rotates its credentials'),
      CONFLICT,
    );

  return {
    /** The operator, checked: only an ACTIVE operator with credentials rotates. Its version is the fallback. */
    async prepareRotation(operatorId: string): Promise<Operator & { credentialsVersion: number }> {
      const op = await findOperator(db, operatorId);
      if (!op) throw ApplicationFailure.nonRetryable(`operator ${operatorId} not found`, NOT_FOUND);
      if (!canRotateCredentials(op.status) || op.credentialsVersion === null) throw notRotating(op);
      return { ...op, credentialsVersion: op.credentialsVersion };
    },

    /** The latest Vault version of the operator's credentials: the base of a rotation's check-and-set. */
    async latestCredentialsVersion(operatorId: string): Promise<number> {
      return vaultStep(async () => {
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
    async promoteStagedCredentials(
      operatorId: string,
      stagedVersion: number,
      baseVersion: number,
      stagingKey?: string | null,
    ): Promise<number> {
      return vaultStep(async () => {
        const finalPath = credentialsPath(operatorId);
        const staging = stagedRotationPath(operatorId, stagingKey);
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

    /** The pending version = the new one, announced by `credentials_rotated` (state pending). */
    async beginRotation(operatorId: string, pendingVersion: number, actor: string): Promise<Operator> {
      return withLockedOperator(db, operatorId, async (op, tx) => {
        if ((await findPendingCredentialsVersion(tx, operatorId)) === pendingVersion) return op;
        if (!canRotateCredentials(op.status)) throw notRotating(op);
        return commitChange(
          tx,
          op,
          'credentials_rotated',
          { pendingCredentialsVersion: pendingVersion },
          actor,
          () => ({
            credentialsVersion: pendingVersion,
            previousCredentialsVersion: op.credentialsVersion,
            state: 'pending',
          }),
        );
      });
    },

    /** The connector bound with the pending version: it becomes current (`credentials_rotated`, state current). */
    async completeRotation(operatorId: string, pendingVersion: number, actor: string): Promise<Operator> {
      return withLockedOperator(db, operatorId, async (op, tx) => {
        const pending = await findPendingCredentialsVersion(tx, operatorId);
        if (pending === null && op.credentialsVersion === pendingVersion) return op;
        if (pending !== pendingVersion) {
          throw ApplicationFailure.nonRetryable(
            `operator ${operatorId} has no rotation to credentials version ${pendingVersion} pending`,
            CONFLICT,
          );
        }
        return commitChange(
          tx,
          op,
          'credentials_rotated',
          { credentialsVersion: pendingVersion, pendingCredentialsVersion: null },
          actor,
          () => ({
            credentialsVersion: pendingVersion,
            previousCredentialsVersion: op.credentialsVersion,
            state: 'current',
          }),
        );
      });
    },

    /**
     * Clears a pending rotation with `credentials_rolled_back`; the current version stays. Nothing
     * to do (and no event) when no rotation was announced or the rollback already committed.
     */
    async rollbackRotation(operatorId: string, reason: string, actor: string): Promise<Operator | null> {
      return withLockedOperator(
        db,
        operatorId,
        async (op, tx) => {
          const rejected = await findPendingCredentialsVersion(tx, operatorId);
          if (rejected === null) return op;
          return commitChange(tx, op, 'credentials_rolled_back', { pendingCredentialsVersion: null }, actor, () => ({
            credentialsVersion: op.credentialsVersion,
            rejectedCredentialsVersion: rejected,
            reason,
          }));
        },
        { missing: 'null' },
      );
    },

    /**
     * Makes Vault's latest version hold the password of `goodVersion` again, as a new version
     * (versions only increase). Nothing to do when nothing was written after `baseVersion`, or
     * when the latest version already holds it (a retry).
     */
    async restoreCredentials(operatorId: string, goodVersion: number, baseVersion: number): Promise<number> {
      return vaultStep(async () => {
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

    /** Removes the rotation's own staging entry (the operator's, for a run started before keys). */
    async discardStagedRotation(operatorId: string, stagingKey?: string | null): Promise<void> {
      await vaultStep(() => kv.destroy(stagedRotationPath(operatorId, stagingKey)));
    },
  };
}
