import type { Pool } from 'pg';
import type { SnapshotRecord } from '../domain/routing-snapshot';
import { listLiveOperators } from './operators';
import { closing, entriesOfTables, findPrefixTables, openSnapshot } from './prefix-tables';
import { listRulesOfLiveOperators } from './routing-rules';

/**
 * Every live operator's routing configuration and the tables its rules use, read in one
 * REPEATABLE READ snapshot on a connection of its own, yielded record by record (the entries a
 * page at a time): the caller streams them out without holding them. `close` releases the
 * connection; the records call it when they end or the reader stops.
 */
export async function openRoutingSnapshot(
  pool: Pool,
): Promise<{ records: AsyncGenerator<Exclude<SnapshotRecord, { type: 'snapshot' }>>; close(): Promise<void> }> {
  const snapshot = await openSnapshot(pool);
  const { client } = snapshot;
  async function* records(): AsyncGenerator<Exclude<SnapshotRecord, { type: 'snapshot' }>> {
    const operators = await listLiveOperators(client);
    const rules = await listRulesOfLiveOperators(client);
    const tableIds = [
      ...new Set([...rules.values()].flat().flatMap((r) => (r.prefixTableId ? [r.prefixTableId] : []))),
    ].sort();
    // Tables first, each with its entries after it: entries come in table order.
    const tables = await findPrefixTables(client, tableIds);
    let next = 0;
    for await (const page of entriesOfTables(
      client,
      tables.map((t) => t.id),
    )) {
      while (next < tables.length && tables[next]!.id <= page.prefixTableId) {
        const table = tables[next++]!;
        yield { type: 'prefixTable', table };
      }
      yield { type: 'prefixTableEntries', ...page };
    }
    for (; next < tables.length; next++) yield { type: 'prefixTable', table: tables[next]! };
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
  return { records: closing(snapshot, records()), close: snapshot.close };
}
