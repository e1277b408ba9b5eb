import { randomUUID } from 'node:crypto';
import type { PoolClient } from 'pg';
import { inTransaction, isUniqueViolation, type Db } from '../clients/postgres';
import {
  bumpTableContent,
  DIFF_MAX,
  fanOutTableChange,
  findPrefixTable,
  findRulesUsingTable,
  insertPrefixTable,
  listPrefixTables,
  openEntriesSnapshot,
  softDeletePrefixTable,
  stageEntries,
  updatePrefixTable,
  fillEmptyTable,
  mergeStagedEntries,
  RepeatedPrefixError,
  type PrefixEntry,
} from '../db/prefix-tables';
import type { PrefixTable, PrefixTableChange } from '../domain/routing';
import { checkVersion, conflict, notFound, validationFailed, type ExpectedVersion } from './shared/errors';

/**
 * Destination prefix tables: the table (name, description, version) and its entries. An entries
 * change is one transaction: the entries, the table's new version, count and hash, and one
 * `operator.config.prefix_table_updated` for every operator whose rules use the table.
 */

export type { PrefixEntry };

/** A request body's prefixes, and how to name the place of one (a CSV line, a JSON index). */
export interface PrefixSource {
  entries: AsyncIterable<PrefixEntry>;
  where(at: number): string;
}

export interface EntriesWritten {
  table: PrefixTable;
  /** Prefixes the body held (repeats counted once each time). */
  received: number;
  added: number;
  removed: number;
  /** Distinct prefixes of the body that were already there. */
  unchanged: number;
  /** The operators told of the change, each at its new version. */
  operators: Array<{ operatorId: string; version: number }>;
}

export class PrefixTableService {
  constructor(private readonly deps: { db: Db }) {}

  async create(input: { name: string; description: string }, actor: string): Promise<PrefixTable> {
    try {
      return await insertPrefixTable(this.deps.db, { id: randomUUID(), ...input }, actor);
    } catch (err) {
      if (isUniqueViolation(err, 'prefix_tables_name_live_key')) throw duplicateName(input.name);
      throw err;
    }
  }

  async get(id: string): Promise<PrefixTable> {
    const table = await findPrefixTable(this.deps.db, id);
    if (!table) throw notFound(`Prefix table ${id}`);
    return table;
  }

  list(query: { after?: { createdAt: string; id: string }; limit: number }): Promise<PrefixTable[]> {
    return listPrefixTables(this.deps.db, query);
  }

  async update(
    id: string,
    patch: { name?: string; description?: string },
    expected: ExpectedVersion,
    actor: string,
  ): Promise<PrefixTable> {
    try {
      return await inTransaction(this.deps.db, async (tx) => {
        const table = await findPrefixTable(tx, id, 'change');
        if (!table) throw notFound(`Prefix table ${id}`);
        checkVersion(expected, table.version);
        return updatePrefixTable(tx, id, patch, actor);
      });
    } catch (err) {
      if (isUniqueViolation(err, 'prefix_tables_name_live_key')) throw duplicateName(patch.name ?? '');
      throw err;
    }
  }

  /** Soft delete; refused (409, naming them) while a live rule uses the table. */
  async remove(id: string, expected: ExpectedVersion, actor: string): Promise<void> {
    await inTransaction(this.deps.db, async (tx) => {
      const table = await findPrefixTable(tx, id, 'delete');
      if (!table) throw notFound(`Prefix table ${id}`);
      checkVersion(expected, table.version);
      const users = await findRulesUsingTable(tx, id);
      if (users.length > 0) {
        throw conflict(`Prefix table ${id} is used by ${users.length} routing rule(s); change them first.`, {
          rules: users,
        });
      }
      await softDeletePrefixTable(tx, id, actor);
    });
  }

  /**
   * `replace` makes the prefixes the table's whole content; `add` adds the new ones. The
   * prefixes are valid (the API checked each line); a source that throws rolls everything back.
   * The version is checked before the body is read (a stale If-Match is answered at once) and
   * again under the table's lock, which a table with entries takes only once its body is staged
   * (src/db/prefix-tables.ts): rule writes and onboarding that use the table wait for the merge,
   * not for the upload.
   */
  async writeEntries(
    id: string,
    source: PrefixSource,
    mode: 'replace' | 'add',
    expected: ExpectedVersion,
    actor: string,
  ): Promise<EntriesWritten> {
    const named = (err: unknown): never => {
      if (!(err instanceof RepeatedPrefixError)) throw err;
      const first = err.first === undefined ? 'an earlier one' : source.where(err.first);
      const field = err.at === undefined ? 'body' : source.where(err.at);
      throw validationFailed([{ field, message: `prefix "${err.prefix}" repeats ${first}` }]);
    };
    const current = async (tx: PoolClient, lock: 'none' | 'change') => {
      const table = await findPrefixTable(tx, id, lock);
      if (!table) throw notFound(`Prefix table ${id}`);
      checkVersion(expected, table.version);
      return table;
    };
    return inTransaction(this.deps.db, async (tx) => {
      const seen = await current(tx, 'none');
      let staged = seen.entryCount === 0 ? undefined : await stageEntries(tx, source.entries).catch(named);
      // Any change since `seen` moved the version: a 412, unless If-Match is `*` (or lists both
      // versions). A table filled meanwhile is then staged now, under the lock: straight from
      // COPY would add to what it holds.
      const before = await current(tx, 'change');
      if (!staged && before.entryCount > 0) staged = await stageEntries(tx, source.entries).catch(named);
      const { received, added, removed, unchanged } = staged
        ? await mergeStagedEntries(tx, id, staged, mode, actor)
        : await fillEmptyTable(tx, id, source.entries, actor).catch(named);
      const nAdded = Number(added.n);
      const nRemoved = Number(removed.n);
      if (nAdded === 0 && nRemoved === 0) {
        return { table: before, received, added: 0, removed: 0, unchanged, operators: [] };
      }
      const table = await bumpTableContent(tx, id, actor);
      const listed = nAdded + nRemoved <= DIFF_MAX;
      const change: PrefixTableChange = {
        prefixTableId: id,
        tableVersion: table.version,
        entryCount: table.entryCount,
        contentHash: table.contentHash,
        previousContentHash: before.contentHash,
        ...(listed
          ? { replaced: false as const, added: added.sample ?? [], removed: removed.sample ?? [] }
          : { replaced: true as const }),
      };
      const operators = await fanOutTableChange(tx, change, actor);
      return { table, received, added: nAdded, removed: nRemoved, unchanged, operators };
    });
  }

  /** The table and its prefixes in order, one snapshot, a page at a time: memory stays flat for a million. */
  async entries(id: string): Promise<{ table: PrefixTable; pages: AsyncGenerator<string[]>; close(): Promise<void> }> {
    const snapshot = await openEntriesSnapshot(this.deps.db, id);
    if (!snapshot) throw notFound(`Prefix table ${id}`);
    return snapshot;
  }
}

function duplicateName(name: string) {
  return conflict(`A prefix table named "${name}" already exists.`);
}
