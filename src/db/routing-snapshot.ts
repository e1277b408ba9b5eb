import type { Pool } from 'pg';
import { tablesUsedBy } from '../domain/operator';
import type { SnapshotRecord } from '../domain/routing-snapshot';
import { listLiveOperators } from './operators';
import { closing, encodedEntriesOfTables, findPrefixTables, openSnapshot } from './prefix-tables';
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
 * the parts out without holding them. `close` releases the connection; the parts call it when
 * they end or the reader stops.
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
  return { parts: closing(snapshot, parts()), close: snapshot.close };
}
