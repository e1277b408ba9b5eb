import { ApplicationFailure } from '@temporalio/activity';
import { inTransaction, isUniqueViolation, type Db } from '../clients/postgres';
import type { KvStore } from '../clients/vault';
import { commitChange, findByEndpoint, findOperator, insertDraft } from '../db/operators';
import { lockPrefixTables } from '../db/prefix-tables';
import { listRoutingRules } from '../db/routing-rules';
import { credentialsPath, stagedCredentialsPath, type SmppCredentials } from '../domain/credentials';
import { CREDENTIALS_NOT_STAGED, DUPLICATE_OPERATOR, UNPROCESSABLE } from '../domain/failures';
import { canTransition, wasActivated } from '../domain/lifecycle';
import { missingPrefixTableErrors, tablesUsedBy, type Operator, type OperatorDraft } from '../domain/operator';
import { vaultStep, withLockedOperator } from './shared';

/** Under the activity's 30 s start-to-close timeout (src/workflows/proxies.ts). */
const CREATED_LOCK_WAIT_MS = 25_000;

/** The onboarding workflow's steps. Each is idempotent: a retry finds its own work done. */
export function createOnboardingActivities({ db, kv }: { db: Db; kv: KvStore }) {
  return {
    /**
     * The operator at version 0 with its TPS limit and rules. Its rules' tables are kept from
     * deletion first: one deleted since the request checked it refuses the onboarding (422,
     * naming the rule), and none can be deleted before the rules that use it are saved. An import
     * of one does not hold the save up: `recordOperatorCreated` waits for that.
     */
    async saveOperator(draft: OperatorDraft, actor: string): Promise<Operator> {
      try {
        return await inTransaction(db, async (tx) => {
          const live = await lockPrefixTables(tx, tablesUsedBy(draft.routingRules), 'keep');
          const errors = missingPrefixTableErrors(draft.routingRules, live, (i) => `routingRules[${i}]`);
          if (errors.length > 0) {
            throw ApplicationFailure.create({
              message: `routing rules name prefix tables that no longer exist: ${errors.map((e) => e.field).join(', ')}`,
              type: UNPROCESSABLE,
              nonRetryable: true,
              details: [{ errors }],
            });
          }
          return insertDraft(tx, draft, actor);
        });
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

    /** Moves the staged password to the operator's credentials path as its first version. */
    async storeCredentials(operatorId: string, stagedVersion: number): Promise<number> {
      return vaultStep(async () => {
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

    /**
     * Version 1 and `operator.config.created`, once credentials are in Vault. Its rules' tables
     * are locked first, as a rule write locks them: an entries change then either commits before
     * (and a consumer reading the tables for this event sees it) or waits, and tells this
     * operator too (it is announced by then). At version 0 the rules cannot change meanwhile.
     */
    async recordOperatorCreated(operatorId: string, credentialsVersion: number, actor: string): Promise<Operator> {
      // A retry after the commit: done, and nothing to lock.
      const current = await findOperator(db, operatorId);
      if (current && current.version > 0) return current;
      const tableIds = tablesUsedBy(await listRoutingRules(db, operatorId));
      return withLockedOperator(
        db,
        operatorId,
        async (op, tx) => {
          if (op.version > 0) return op;
          const routingRules = await listRoutingRules(tx, operatorId);
          return commitChange(tx, op, 'created', { credentialsVersion }, actor, (next) => ({
            operator: next,
            routingRules,
          }));
        },
        // An import holds its table while it merges (the whole upload when it fills an empty
        // table): wait most of the attempt, not the pool's 5 s.
        { lockFirst: (tx) => lockPrefixTables(tx, tableIds, 'use', { waitMs: CREATED_LOCK_WAIT_MS }) },
      );
    },

    async activateOperator(operatorId: string, actor: string): Promise<Operator> {
      return withLockedOperator(db, operatorId, async (op, tx) => {
        // A retry after a lost reply may find it ACTIVE, or already draining: never undo a drain.
        if (wasActivated(op.status)) return op;
        return commitChange(tx, op, 'activated', { status: 'ACTIVE', statusReason: null }, actor);
      });
    },

    /**
     * ONBOARDING_FAILED with its reason; the partial index then frees (host, port, systemId). A
     * compensation: an operator that got past onboarding (or never existed) is left as it is. A
     * deleted one is returned too: it was activated and drained since, and its secret is kept.
     */
    async markOnboardingFailed(operatorId: string, reason: string, actor: string): Promise<Operator | null> {
      return withLockedOperator(
        db,
        operatorId,
        async (op, tx) => {
          if (!canTransition(op.status, 'ONBOARDING_FAILED')) return op;
          return commitChange(
            tx,
            op,
            'onboarding_failed',
            { status: 'ONBOARDING_FAILED', statusReason: reason },
            actor,
            (next) => ({ operator: next, reason }),
          );
        },
        { missing: 'null', includeDeleted: true },
      );
    },

    /** Leaves nothing of the operator's secret behind: every version, staged or stored. */
    async discardCredentials(operatorId: string): Promise<void> {
      await vaultStep(async () => {
        await kv.destroy(stagedCredentialsPath(operatorId));
        await kv.destroy(credentialsPath(operatorId));
      });
    },
  };
}
