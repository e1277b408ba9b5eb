import { ApplicationFailure } from '@temporalio/activity';
import type { Db } from '../clients/postgres';
import type { Redis } from '../clients/redis';
import { recentReporters } from '../db/health-log';
import { commitChange, findPendingCredentialsVersion, softDeleteOperatorConfig } from '../db/operators';
import { CONFLICT } from '../domain/failures';
import { HEALTH_TOMBSTONE_TTL_S, healthKey, healthTombstoneKey } from '../domain/health';
import type { Operator } from '../domain/operator';
import { withLockedOperator } from './shared';

/** The drain workflow's steps. Each is idempotent: a retry finds its own work done. */
export function createDrainActivities({ db, redis }: { db: Db; redis: Redis }) {
  return {
    /** ACTIVE → DRAINING with `operator.config.draining`; the lifecycle refuses any other state. */
    async beginDrain(operatorId: string, actor: string): Promise<Operator> {
      return withLockedOperator(db, operatorId, async (op, tx) => {
        if (op.status === 'DRAINING') return op;
        // Checked under the row lock: the services' "is a rotation running" check can race.
        if ((await findPendingCredentialsVersion(tx, operatorId)) !== null) {
          throw ApplicationFailure.nonRetryable(`a credential rotation of operator ${operatorId} is pending`, CONFLICT);
        }
        return commitChange(tx, op, 'draining', { status: 'DRAINING', statusReason: 'drain requested' }, actor);
      });
    },

    /**
     * The connector instances that reported for the operator in the last `windowS` seconds, each
     * with its newest report: those the drain must hear 0 from, including any that reported just
     * before the drain and not since. Read-only.
     */
    async recentConnectorReports(operatorId: string, windowS: number) {
      return recentReporters(db, operatorId, new Date(Date.now() - windowS * 1000));
    },

    /** DRAINING → ACTIVE with `operator.config.drain_cancelled`. */
    async cancelDrain(operatorId: string, actor: string): Promise<Operator> {
      return withLockedOperator(db, operatorId, async (op, tx) => {
        if (op.status !== 'DRAINING') return op;
        return commitChange(tx, op, 'drain_cancelled', { status: 'ACTIVE', statusReason: null }, actor);
      });
    },

    /**
     * The soft delete: DELETED with deleted_at, `operator.config.deleted`, and the operator's
     * rules and TPS limit soft-deleted with it. A retry finds the row already deleted.
     */
    async finishDrain(operatorId: string, actor: string, reason: 'drained' | 'timeout'): Promise<void> {
      await withLockedOperator(
        db,
        operatorId,
        async (op, tx) => {
          await commitChange(
            tx,
            op,
            'deleted',
            { status: 'DELETED', statusReason: reason === 'drained' ? 'drained' : 'drain timeout' },
            actor,
            (next) => ({ operator: next, reason }),
          );
          await softDeleteOperatorConfig(tx, operatorId, actor);
        },
        { missing: 'null' },
      );
    },

    /**
     * A deleted operator has no health: the routing engine must not find a stale `UP`. The
     * tombstone, set in the same step, keeps a report already on its way from writing the key
     * again (the cache's write checks it).
     */
    async forgetHealth(operatorId: string): Promise<void> {
      await redis
        .multi()
        .set(healthTombstoneKey(operatorId), '1', 'EX', HEALTH_TOMBSTONE_TTL_S)
        .del(healthKey(operatorId))
        .exec();
    },
  };
}
