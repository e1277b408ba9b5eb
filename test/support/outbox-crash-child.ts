/**
 * A service process for test/outbox-crash.test.ts to SIGKILL. Two roles:
 * - `commit <operatorId>`: commits one change through commitChange, runs no relay, prints
 *   `committed <eventId>` and hangs: a process that dies between commit and publish.
 * - `relay`: runs one relay flush over whatever is pending, printing `relaying` first: the test
 *   kills it in the middle, between JetStream's acks and the relay's marks.
 * Usage: node --import <tsx loader> outbox-crash-child.ts commit <operatorId> | relay
 */
import { connectNats } from '../../src/clients/nats';
import { createPool, inTransaction, type Db } from '../../src/clients/postgres';
import { loadConfig } from '../../src/platform/config';
import { commitChange, findOperator } from '../../src/db/operators';
import { OutboxRelay } from '../../src/events/outbox';
import { createLogger } from '../../src/platform/logger';

const hang = () => setInterval(() => undefined, 60_000);

async function commit(db: Db, operatorId: string): Promise<void> {
  const eventId = await inTransaction(db, async (tx) => {
    const current = await findOperator(tx, operatorId, true);
    if (!current) throw new Error(`operator ${operatorId} not found`);
    const next = await commitChange(
      tx,
      current,
      'updated',
      { name: 'Crashed mid-change' },
      'test-outbox-crash',
      (op) => ({ operator: op, changed: ['name'] }),
    );
    const { rows } = await tx.query<{ event_id: string }>(
      'SELECT event_id FROM ops.event_outbox WHERE operator_id = $1 AND version = $2',
      [operatorId, next.version],
    );
    return rows[0]?.event_id;
  });
  process.stdout.write(`committed ${eventId}\n`);
  // Hang with the pool open, as a process would between its commit and the relay's publish.
  hang();
}

async function relay(db: Db): Promise<void> {
  const config = loadConfig();
  const nc = await connectNats(config.nats, 'outbox-crash-child');
  const outbox = new OutboxRelay(db, nc, createLogger('silent'), { stream: config.nats.stream });
  process.stdout.write('relaying\n');
  const sent = await outbox.flush();
  process.stdout.write(`flushed ${sent}\n`);
  hang();
}

async function main(): Promise<void> {
  const [role, operatorId] = process.argv.slice(2);
  const db = createPool(loadConfig().postgres);
  if (role === 'commit' && operatorId) return commit(db, operatorId);
  if (role === 'relay') return relay(db);
  throw new Error('usage: outbox-crash-child.ts commit <operatorId> | relay');
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
