import { ApplicationFailure } from '@temporalio/activity';
import type { PoolClient } from 'pg';
import { inTransaction, type Db } from '../clients/postgres';
import { VaultError } from '../clients/vault';
import { findOperator } from '../db/operators';
import type { SmppCredentials } from '../domain/credentials';
import { CONFLICT, EVENT_TOO_LARGE, NOT_FOUND, VAULT_REJECTED } from '../domain/failures';
import { EventTooLargeError } from '../events/envelope';
import { IllegalTransitionError } from '../domain/lifecycle';
import type { Operator } from '../domain/operator';

/** What the capability activities share: the locked operator, and failures a retry will not heal. */

/** What a transaction locks before the operator's row (the one order that cannot deadlock). */
type LockFirst = (tx: PoolClient) => Promise<unknown>;

interface LockOptions {
  /** What the transaction locks before the operator's row. */
  lockFirst?: LockFirst;
  /** A soft-deleted operator is found too (a compensation must tell "deleted" from "never saved"). */
  includeDeleted?: boolean;
}

/**
 * Runs fn on the locked operator inside one transaction; `null` when it does not exist (or is
 * deleted, unless `includeDeleted`) and `missing` is 'null'. A lifecycle refusal fails the
 * activity for good.
 */
export async function withLockedOperator<T>(
  db: Db,
  operatorId: string,
  fn: (op: Operator, tx: PoolClient) => Promise<T>,
  options?: LockOptions & { missing?: 'fail' },
): Promise<T>;
export async function withLockedOperator<T>(
  db: Db,
  operatorId: string,
  fn: (op: Operator, tx: PoolClient) => Promise<T>,
  options: LockOptions & { missing: 'null' },
): Promise<T | null>;
export async function withLockedOperator<T>(
  db: Db,
  operatorId: string,
  fn: (op: Operator, tx: PoolClient) => Promise<T>,
  { missing = 'fail', lockFirst, includeDeleted = false }: LockOptions & { missing?: 'fail' | 'null' } = {},
): Promise<T | null> {
  try {
    return await inTransaction(db, async (tx) => {
      await lockFirst?.(tx);
      const op = await findOperator(tx, operatorId, true, includeDeleted);
      if (op) return fn(op, tx);
      if (missing === 'null') return null;
      throw ApplicationFailure.nonRetryable(`operator ${operatorId} not found`, NOT_FOUND);
    });
  } catch (err) {
    if (err instanceof IllegalTransitionError) throw ApplicationFailure.nonRetryable(err.message, CONFLICT);
    // Nothing was committed, and a retry would build the same event.
    if (err instanceof EventTooLargeError) throw ApplicationFailure.nonRetryable(err.message, EVENT_TOO_LARGE);
    throw err;
  }
}

/** Runs a Vault step: a refusal (403, 400) will not heal by retrying; an outage or a 5xx might. */
export async function vaultStep<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof VaultError && err.permanent) throw ApplicationFailure.nonRetryable(err.message, VAULT_REJECTED);
    throw err;
  }
}

export function sameCredentials(a: SmppCredentials, b: SmppCredentials): boolean {
  return a.system_id === b.system_id && a.password === b.password;
}
