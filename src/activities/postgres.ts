import { ApplicationFailure } from '@temporalio/activity';
import type { PoolClient } from 'pg';
import { inTransaction, isUniqueViolation, type Db } from '../clients/postgres';
import {
  commitChange,
  findByEndpoint,
  findOperator,
  insertDraft,
  listRoutingRules,
  softDeleteOperatorConfig,
} from '../db/operators';
import { pendingCredentialsVersion, setPendingCredentialsVersion } from '../db/rotations';
import type { Operator, OperatorDraft } from '../domain/operator';
import { CONFLICT, DUPLICATE_OPERATOR, NOT_FOUND } from '../domain/failures';

/** Operator state changes in PostgreSQL. Each is idempotent: a retry finds its own work done. */
export function createPostgresActivities(db: Db) {
  /** Runs fn on the locked, live operator inside one transaction. */
  async function locked(operatorId: string, fn: (op: Operator, tx: PoolClient) => Promise<Operator>) {
    return inTransaction(db, async (tx) => {
      const op = await findOperator(tx, operatorId, true);
      if (!op) throw ApplicationFailure.nonRetryable(`operator ${operatorId} not found`, NOT_FOUND);
      return fn(op, tx);
    });
  }

  return {
    async saveOperator(draft: OperatorDraft, actor: string): Promise<Operator> {
      try {
        return await inTransaction(db, (tx) => insertDraft(tx, draft, actor));
      } catch (err) {
        if (!isUniqueViolation(err, 'operators_endpoint_live_key')) throw err;
        const holder = await findByEndpoint(db, draft.metadata);
        throw ApplicationFailure.create({
          message: `an operator with this host, port and systemId exists: ${holder?.id ?? 'unknown'}`,
          type: DUPLICATE_OPERATOR,
          nonRetryable: true,
          details: [{ existingOperatorId: holder?.id ?? null }],
        });
      }
    },

    /** Version 1 and `operator.config.created`, once credentials are in Vault. */
    async recordOperatorCreated(operatorId: string, credentialsVersion: number, actor: string): Promise<Operator> {
      return locked(operatorId, async (op, tx) => {
        if (op.version > 0) return op;
        const routingRules = await listRoutingRules(tx, operatorId);
        return commitChange(tx, op, 'created', { credentials_version: credentialsVersion }, actor, (next) => ({
          operator: next,
          routingRules,
        }));
      });
    },

    async activateOperator(operatorId: string, actor: string): Promise<Operator> {
      return locked(operatorId, async (op, tx) => {
        if (op.status === 'ACTIVE') return op;
        if (op.status !== 'ONBOARDING') {
          throw ApplicationFailure.nonRetryable(`operator ${operatorId} is ${op.status}, not ONBOARDING`);
        }
        return commitChange(tx, op, 'activated', { status: 'ACTIVE', status_reason: null }, actor);
      });
    },

    /** ONBOARDING_FAILED with its reason; the partial index then frees (host, port, systemId). */
    async markOnboardingFailed(operatorId: string, reason: string, actor: string): Promise<Operator | null> {
      return inTransaction(db, async (tx) => {
        const op = await findOperator(tx, operatorId, true);
        if (!op) return null;
        if (op.status !== 'ONBOARDING') return op;
        return commitChange(
          tx,
          op,
          'onboarding_failed',
          { status: 'ONBOARDING_FAILED', status_reason: reason },
          actor,
          (next) => ({
            operator: next,
            reason,
          }),
        );
      });
    },

    /** ACTIVE → DRAINING with `operator.config.draining`; refuses any other state. */
    async beginDrain(operatorId: string, actor: string): Promise<Operator> {
      return locked(operatorId, async (op, tx) => {
        if (op.status === 'DRAINING') return op;
        if (op.status !== 'ACTIVE') {
          throw ApplicationFailure.nonRetryable(`operator ${operatorId} is ${op.status}, not ACTIVE`, CONFLICT);
        }
        // Checked under the row lock: the services' "is a rotation running" check can race.
        if ((await pendingCredentialsVersion(tx, operatorId)) !== null) {
          throw ApplicationFailure.nonRetryable(`a credential rotation of operator ${operatorId} is pending`, CONFLICT);
        }
        return commitChange(tx, op, 'draining', { status: 'DRAINING', status_reason: 'drain requested' }, actor);
      });
    },

    /** DRAINING → ACTIVE with `operator.config.drain_cancelled`. */
    async cancelDrain(operatorId: string, actor: string): Promise<Operator> {
      return locked(operatorId, async (op, tx) => {
        if (op.status !== 'DRAINING') return op;
        return commitChange(tx, op, 'drain_cancelled', { status: 'ACTIVE', status_reason: null }, actor);
      });
    },

    /**
     * The soft delete: DELETED with deleted_at, `operator.config.deleted`, and the operator's
     * rules and TPS limit soft-deleted with it. A retry finds the row already deleted.
     */
    async finishDrain(operatorId: string, actor: string, reason: 'drained' | 'timeout'): Promise<void> {
      await inTransaction(db, async (tx) => {
        const op = await findOperator(tx, operatorId, true);
        if (!op) return;
        if (op.status !== 'DRAINING') {
          throw ApplicationFailure.nonRetryable(`operator ${operatorId} is ${op.status}, not DRAINING`, CONFLICT);
        }
        await commitChange(
          tx,
          op,
          'deleted',
          {
            status: 'DELETED',
            status_reason: reason === 'drained' ? 'drained' : 'drain timeout',
            deleted_at: new Date(),
          },
          actor,
          (next) => ({ operator: next, reason }),
        );
        await softDeleteOperatorConfig(tx, operatorId, actor);
      });
    },

    /** The credentials version in force, for a rotation to fall back to; only an ACTIVE operator rotates. */
    async prepareRotation(operatorId: string): Promise<{ credentialsVersion: number }> {
      const op = await findOperator(db, operatorId);
      if (!op) throw ApplicationFailure.nonRetryable(`operator ${operatorId} not found`, NOT_FOUND);
      if (op.status !== 'ACTIVE' || op.credentialsVersion === null) {
        throw ApplicationFailure.nonRetryable(`operator ${operatorId} is ${op.status}, not ACTIVE`, CONFLICT);
      }
      return { credentialsVersion: op.credentialsVersion };
    },

    /** `pending_credentials_version` = the new version, announced by `credentials_rotated` (state pending). */
    async beginRotation(operatorId: string, pendingVersion: number, actor: string): Promise<Operator> {
      return locked(operatorId, async (op, tx) => {
        if ((await pendingCredentialsVersion(tx, operatorId)) === pendingVersion) return op;
        if (op.status !== 'ACTIVE') {
          throw ApplicationFailure.nonRetryable(`operator ${operatorId} is ${op.status}, not ACTIVE`, CONFLICT);
        }
        await setPendingCredentialsVersion(tx, operatorId, pendingVersion);
        return commitChange(tx, op, 'credentials_rotated', {}, actor, () => ({
          credentialsVersion: pendingVersion,
          previousCredentialsVersion: op.credentialsVersion,
          state: 'pending',
        }));
      });
    },

    /** The connector bound with the pending version: it becomes current (`credentials_rotated`, state current). */
    async completeRotation(operatorId: string, pendingVersion: number, actor: string): Promise<Operator> {
      return locked(operatorId, async (op, tx) => {
        const pending = await pendingCredentialsVersion(tx, operatorId);
        if (pending === null && op.credentialsVersion === pendingVersion) return op;
        if (pending !== pendingVersion) {
          throw ApplicationFailure.nonRetryable(
            `operator ${operatorId} has no rotation to credentials version ${pendingVersion} pending`,
            CONFLICT,
          );
        }
        await setPendingCredentialsVersion(tx, operatorId, null);
        return commitChange(tx, op, 'credentials_rotated', { credentials_version: pendingVersion }, actor, () => ({
          credentialsVersion: pendingVersion,
          previousCredentialsVersion: op.credentialsVersion,
          state: 'current',
        }));
      });
    },

    /**
     * Clears a pending rotation with `credentials_rolled_back`; the current version stays. Nothing
     * to do (and no event) when no rotation was announced or the rollback already committed.
     */
    async rollbackRotation(operatorId: string, reason: string, actor: string): Promise<Operator | null> {
      return inTransaction(db, async (tx) => {
        const op = await findOperator(tx, operatorId, true);
        if (!op) return null;
        const rejected = await pendingCredentialsVersion(tx, operatorId);
        if (rejected === null) return op;
        await setPendingCredentialsVersion(tx, operatorId, null);
        return commitChange(tx, op, 'credentials_rolled_back', {}, actor, () => ({
          credentialsVersion: op.credentialsVersion,
          rejectedCredentialsVersion: rejected,
          reason,
        }));
      });
    },
  };
}

export type PostgresActivities = ReturnType<typeof createPostgresActivities>;
