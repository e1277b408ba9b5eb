import type { Pool } from 'pg';
import type { SnapshotRecord } from '../domain/routing-snapshot';
import { listLiveOperators } from './operators';
import { entryPages, findPrefixTable, openSnapshot, released } from './prefix-tables';
import { listRulesOfLiveOperators } from './routing-rules';

/**
 * Every live operator's routing configuration and the tables its rules use, read in one
 * REPEATABLE READ snapshot on a connection of its own, yielded record by record (the entries a
 * page at a time): the caller streams them out without holding them. The connection is released
 * when the records end or the reader stops.
 */
export async function openRoutingSnapshot(
  pool: Pool,
): Promise<AsyncGenerator<Exclude<SnapshotRecord, { type: 'snapshot' }>>> {
  const client = await openSnapshot(pool);
  async function* records(): AsyncGenerator<Exclude<SnapshotRecord, { type: 'snapshot' }>> {
    const operators = await listLiveOperators(client);
    const rules = await listRulesOfLiveOperators(client);
    const tableIds = [
      ...new Set([...rules.values()].flat().flatMap((r) => (r.prefixTableId ? [r.prefixTableId] : []))),
    ].sort();
    let tables = 0;
    for (const id of tableIds) {
      const table = await findPrefixTable(client, id);
      if (!table) continue;
      tables++;
      yield { type: 'prefixTable', table };
      for await (const prefixes of entryPages(client, id))
        yield { type: 'prefixTableEntries', prefixTableId: id, prefixes };
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
    yield { type: 'end', operators: operators.length, prefixTables: tables };
  }
  return released(client, records());
}
