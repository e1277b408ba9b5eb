import { ApplicationFailure } from '@temporalio/activity';
import type { PoolClient } from 'pg';
import { inTransaction, isUniqueViolation, type Db } from '../clients/postgres';
import { commitChange, findByEndpoint, findOperator, insertDraft, listRoutingRules } from '../db/operators';
import type { Operator, OperatorDraft } from '../domain/operator';
import { DUPLICATE_OPERATOR, NOT_FOUND } from '../domain/failures';

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
  };
}

export type PostgresActivities = ReturnType<typeof createPostgresActivities>;
