import type { Pool } from 'pg';
import { tablesUsedBy } from '../domain/operator';
import type { SnapshotRecord } from '../domain/routing-snapshot';
import { listLiveOperators } from './operators';
import { encodedEntriesOfTables, findPrefixTables, openSnapshot } from './prefix-tables';
import { listRulesOfLiveOperators } from './routing-rules';

/** NDJSON lines encoded by PostgreSQL, whole or in part: passed on as they are. */
export interface EncodedLines {
  encoded: Buffer;
}

export type SnapshotPart = Exclude<SnapshotRecord, { type: 'snapshot' }> | EncodedLines;

/**
 * Every live operator's routing configuration and the tables its rules use, read in one
 * REPEATABLE READ snapshot on a connection of its own: the table records, then their entries
 * (encoded by PostgreSQL, see `encodedEntriesOfTables`), then the operators. The caller streams
 * the parts out without holding them. The parts release the connection when they end or the
 * reader stops; `close` (the reader gone) releases it at once only when no part is being read:
 * otherwise their end does, so that no query of theirs runs on a connection already given back
 * to the pool (inside another request's transaction).
 */
export async function openRoutingSnapshot(
  pool: Pool,
): Promise<{ parts: AsyncGenerator<SnapshotPart>; close(): Promise<void> }> {
  const snapshot = await openSnapshot(pool);
  const { client } = snapshot;
  async function* parts(): AsyncGenerator<SnapshotPart> {
    const operators = await listLiveOperators(client);
    const rules = await listRulesOfLiveOperators(client);
    const tableIds = tablesUsedBy([...rules.values()].flat()).sort();
    const tables = await findPrefixTables(client, tableIds);
    for (const table of tables) yield { type: 'prefixTable', table };
    if (tables.length > 0) {
      for await (const encoded of encodedEntriesOfTables(
        snapshot,
        tables.map((t) => t.id),
      ))
        yield { encoded };
    }
    for (const operator of operators) {
      yield {
        type: 'operator',
        operator,
        version: operator.version,
        routingRules: rules.get(operator.id) ?? [],
        tpsLimit: operator.tpsLimit,
      };
    }
    yield { type: 'end', operators: operators.length, prefixTables: tables.length };
  }
  // Whether a part is being read (its queries running) and whether the reader has gone.
  let reading = false;
  let closed = false;
  async function* whileWanted(): AsyncGenerator<SnapshotPart> {
    const source = parts();
    try {
      while (!closed) {
        reading = true;
        const step = await source.next();
        reading = false;
        if (step.done || closed) return;
        yield step.value;
      }
    } finally {
      reading = false;
      await source.return(undefined);
      await snapshot.close();
    }
  }
  return {
    parts: whileWanted(),
    close: async () => {
      closed = true;
      if (!reading) await snapshot.close();
    },
  };
}
