import { randomUUID } from 'node:crypto';
import { inTransaction, type Db } from '../../src/clients/postgres';
import { commitChange, findOperator } from '../../src/db/operators';

/** Operators made straight in PostgreSQL, and config changes on them: the outbox tests' input. */

/** An ACTIVE operator at version 1 (as if onboarded), with an endpoint no other test uses. */
export async function insertActiveOperator(db: Db, actor: string): Promise<string> {
  const id = randomUUID();
  await db.query(
    `INSERT INTO ops.operators (id, name, host, port, system_id, bind_type, window_size, enquire_link_interval_s,
                                status, version, created_by, updated_by)
     VALUES ($1, $3, $2, 2775, 'outbox', 'transceiver', 10, 30, 'ACTIVE', 1, $3, $3)`,
    [id, `outbox-${id}.example.net`, actor],
  );
  return id;
}

/** One rename through commitChange: the version goes up and `operator.config.updated` joins the outbox. */
export async function commitRename(db: Db, operatorId: string, actor: string): Promise<void> {
  await inTransaction(db, async (tx) => {
    const current = await findOperator(tx, operatorId, true);
    if (!current) throw new Error(`operator ${operatorId} missing`);
    await commitChange(tx, current, 'updated', { name: `${actor} v${current.version + 1}` }, actor, (next) => ({
      operator: next,
      changed: ['name'],
    }));
  });
}
