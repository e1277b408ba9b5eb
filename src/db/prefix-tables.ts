import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Pool, PoolClient } from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { PrefixTable, PrefixTableChange } from '../domain/routing';
import { isUniqueViolation, withoutAnswerDeadline } from '../clients/postgres';
import { appendConfigEvents } from '../events/outbox';

/** SQL for prefix tables and their entries. Every read excludes soft-deleted rows. */

type Queryable = Pool | PoolClient;

interface PrefixTableRow {
  id: string;
  name: string;
  description: string;
  version: string;
  entry_count: number;
  content_hash: string;
  created_at: Date;
  created_by: string;
  updated_at: Date;
  updated_by: string;
}

const COLUMNS = `id, name, description, version, entry_count, content_hash, created_at, created_by, updated_at, updated_by`;

function toTable(r: PrefixTableRow): PrefixTable {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    version: Number(r.version),
    entryCount: r.entry_count,
    contentHash: r.content_hash,
    createdAt: r.created_at.toISOString(),
    createdBy: r.created_by,
    updatedAt: r.updated_at.toISOString(),
    updatedBy: r.updated_by,
  };
}

/** Prefixes per page of an export or a snapshot record: memory holds a page, not a table. */
const EXPORT_PAGE = 10_000;

/** SHA-256 of nothing: the content hash of an empty table. */
export const EMPTY_CONTENT_HASH = createHash('sha256').digest('hex');

/** The live tables among `ids`, in id order. */
export async function findPrefixTables(db: Queryable, ids: readonly string[]): Promise<PrefixTable[]> {
  const { rows } = await db.query<PrefixTableRow>(
    `SELECT ${COLUMNS} FROM ops.prefix_tables WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL ORDER BY id`,
    [ids],
  );
  return rows.map(toTable);
}

/**
 * The live entries of the tables `ids` as NDJSON `prefixTableEntries` records of up to
 * EXPORT_PAGE prefixes each (tables in no particular order, prefixes in order within a page),
 * encoded by PostgreSQL and copied out in the snapshot's transaction: a million entries cost
 * about what a raw COPY of them does, with no row ever parsed here. The CSV format with a quote
 * and a delimiter that JSON text never holds (PostgreSQL escapes control characters) leaves
 * each line as it is.
 */
export function encodedEntriesOfTables(snapshot: Snapshot, ids: readonly string[]): AsyncGenerator<Buffer> {
  const tables = snapshot.client.escapeLiteral(`{${ids.join(',')}}`);
  return snapshot.copyOut(
    `COPY (
       SELECT '{"type":"prefixTableEntries","prefixTableId":"' || t.prefix_table_id || '","prefixes":'
              || array_to_json(t.prefixes[page:page + ${EXPORT_PAGE - 1}]) || '}'
         FROM (SELECT prefix_table_id, array_agg(prefix ORDER BY prefix) AS prefixes
                 FROM ops.prefix_table_entries
                WHERE prefix_table_id = ANY(${tables}::uuid[]) AND deleted_at IS NULL
                GROUP BY prefix_table_id) t,
              generate_series(1, cardinality(t.prefixes), ${EXPORT_PAGE}) AS page
     ) TO STDOUT WITH (FORMAT csv, DELIMITER E'\\x1f', QUOTE E'\\x1e')`,
  );
}

/** The ids among `ids` that name a live prefix table. */
export async function findLivePrefixTableIds(db: Queryable, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>(
    'SELECT id FROM ops.prefix_tables WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL',
    [ids],
  );
  return new Set(rows.map((r) => r.id));
}

const TABLE_LOCKS = {
  // SHARE: against deletion and entry changes. A rule write takes it before its operator's row,
  // as an import takes the table's before its operators': one order, no deadlock.
  use: 'FOR SHARE',
  // KEY SHARE: against deletion only (its FOR UPDATE, below); an import or an entries change
  // does not hold it up.
  keep: 'FOR KEY SHARE',
} as const;

/**
 * The live tables among `ids`, their rows locked in id order until the transaction ends (`use`
 * or `keep`, above): a table deleted meanwhile is not returned, so no live rule can point at a
 * deleted table. `waitMs` replaces the pool's lock timeout for this lock only.
 */
export async function lockPrefixTables(
  tx: PoolClient,
  ids: readonly string[],
  lock: keyof typeof TABLE_LOCKS,
  { waitMs }: { waitMs?: number } = {},
): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const select = () =>
    tx.query<{ id: string }>(
      `SELECT id FROM ops.prefix_tables WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL ORDER BY id ${TABLE_LOCKS[lock]}`,
      [[...ids].sort()],
    );
  if (waitMs === undefined) return new Set((await select()).rows.map((r) => r.id));
  const { rows: set } = await tx.query<{ previous: string }>(
    `SELECT current_setting('lock_timeout') AS previous, set_config('lock_timeout', $1, true)`,
    [String(Math.trunc(waitMs))],
  );
  const { rows } = await select();
  // Not restored after a failure: the transaction is over then.
  await tx.query(`SELECT set_config('lock_timeout', $1, true)`, [set[0]?.previous]);
  return new Set(rows.map((r) => r.id));
}

const ROW_LOCKS = {
  none: '',
  // NO KEY UPDATE, not UPDATE: a rule insert's foreign-key check (KEY SHARE) must not wait for
  // an import, or the two could deadlock.
  change: 'FOR NO KEY UPDATE',
  // UPDATE: waits for every rule being saved on the table (their KEY SHARE), which the deletion
  // then sees. It takes no other lock, so it cannot be part of a deadlock.
  delete: 'FOR UPDATE',
} as const;

/** The live table, its row locked for a `change` or a `delete` until the transaction ends. */
export async function findPrefixTable(
  db: Queryable,
  id: string,
  lock: keyof typeof ROW_LOCKS = 'none',
): Promise<PrefixTable | undefined> {
  const { rows } = await db.query<PrefixTableRow>(
    `SELECT ${COLUMNS} FROM ops.prefix_tables WHERE id = $1 AND deleted_at IS NULL ${ROW_LOCKS[lock]}`,
    [id],
  );
  return rows[0] && toTable(rows[0]);
}

export async function listPrefixTables(
  db: Queryable,
  q: { after?: { createdAt: string; id: string }; limit: number },
): Promise<PrefixTable[]> {
  const params: unknown[] = [q.limit];
  let after = '';
  if (q.after) {
    params.push(q.after.createdAt, q.after.id);
    after = `AND (date_trunc('milliseconds', created_at), id) > ($2::timestamptz, $3::uuid)`;
  }
  const { rows } = await db.query<PrefixTableRow>(
    `SELECT ${COLUMNS} FROM ops.prefix_tables WHERE deleted_at IS NULL ${after}
      ORDER BY date_trunc('milliseconds', created_at), id LIMIT $1`,
    params,
  );
  return rows.map(toTable);
}

export async function insertPrefixTable(
  db: Queryable,
  table: { id: string; name: string; description: string },
  actor: string,
): Promise<PrefixTable> {
  const { rows } = await db.query<PrefixTableRow>(
    `INSERT INTO ops.prefix_tables (id, name, description, content_hash, created_by, updated_by)
     VALUES ($1, $2, $3, $4, $5, $5) RETURNING ${COLUMNS}`,
    [table.id, table.name, table.description, EMPTY_CONTENT_HASH, actor],
  );
  return toTable(rows[0] as PrefixTableRow);
}

/** Name and description; the version goes up by one. */
export async function updatePrefixTable(
  tx: PoolClient,
  id: string,
  patch: { name?: string; description?: string },
  actor: string,
): Promise<PrefixTable> {
  const { rows } = await tx.query<PrefixTableRow>(
    `UPDATE ops.prefix_tables
        SET name = coalesce($2, name), description = coalesce($3, description), version = version + 1, updated_by = $4
      WHERE id = $1 AND deleted_at IS NULL RETURNING ${COLUMNS}`,
    [id, patch.name ?? null, patch.description ?? null, actor],
  );
  return toTable(rows[0] as PrefixTableRow);
}

export async function softDeletePrefixTable(tx: PoolClient, id: string, actor: string): Promise<void> {
  await tx.query(
    'UPDATE ops.prefix_tables SET deleted_at = now(), version = version + 1, updated_by = $2 WHERE id = $1',
    [id, actor],
  );
}

/** The live rules of live operators that use the table: what keeps it from being deleted. */
export async function findRulesUsingTable(
  db: Queryable,
  id: string,
): Promise<Array<{ ruleId: string; operatorId: string }>> {
  const { rows } = await db.query<{ rule_id: string; operator_id: string }>(
    `SELECT r.id AS rule_id, r.operator_id
       FROM ops.routing_rules r JOIN ops.operators o ON o.id = r.operator_id
      WHERE r.prefix_table_id = $1 AND r.deleted_at IS NULL AND o.deleted_at IS NULL
        AND o.status NOT IN ('ONBOARDING_FAILED', 'DELETED')
      ORDER BY r.operator_id, r.id`,
    [id],
  );
  return rows.map((r) => ({ ruleId: r.rule_id, operatorId: r.operator_id }));
}

/**
 * The table and its live prefixes in order, as one snapshot (REPEATABLE READ): the pages never
 * mix two versions, and memory holds one page. The connection is released when the pages end
 * or the caller stops reading them.
 */
export async function openEntriesSnapshot(
  pool: Pool,
  id: string,
): Promise<{ table: PrefixTable; pages: AsyncGenerator<string[]>; close(): Promise<void> } | undefined> {
  const snapshot = await openSnapshot(pool);
  try {
    const table = await findPrefixTable(snapshot.client, id);
    if (!table) {
      await snapshot.close();
      return undefined;
    }
    return { table, pages: closing(snapshot, entryPages(snapshot.client, id)), close: snapshot.close };
  } catch (err) {
    await snapshot.close();
    throw err;
  }
}

/** A table's live prefixes in order, a page at a time, in the client's transaction. */
export async function* entryPages(client: PoolClient, id: string): AsyncGenerator<string[]> {
  let after = '';
  for (;;) {
    const { rows } = await client.query<{ prefix: string }>({
      name: 'prefix-page',
      text: `SELECT prefix FROM ops.prefix_table_entries
              WHERE prefix_table_id = $1 AND deleted_at IS NULL AND prefix > $2
              ORDER BY prefix LIMIT $3`,
      values: [id, after, EXPORT_PAGE],
    });
    if (rows.length > 0) yield rows.map((r) => r.prefix);
    if (rows.length < EXPORT_PAGE) return;
    after = rows[rows.length - 1]?.prefix ?? after;
  }
}

/**
 * A read-only snapshot (REPEATABLE READ) on a connection of its own: every read sees one instant.
 * `close` ends it and releases the connection, once, whoever calls it first: the records' end,
 * or the HTTP layer when the answer is done or abandoned (a HEAD, a client gone before reading:
 * a generator that never started would never reach its `finally`).
 */
export interface Snapshot {
  client: PoolClient;
  /**
   * The output of `COPY (...) TO STDOUT`, chunk by chunk. A copy stopped half-way leaves the
   * connection mid-protocol: `close` then drops it instead of reusing it.
   */
  copyOut(sql: string): AsyncGenerator<Buffer>;
  close(): Promise<void>;
}

export async function openSnapshot(pool: Pool): Promise<Snapshot> {
  const client = await pool.connect();
  let closed = false;
  let copying = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    if (copying) {
      client.release(new Error('a COPY was abandoned half-way'));
      return;
    }
    const failed = await client.query('ROLLBACK').then(
      () => undefined,
      (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
    );
    // A connection whose ROLLBACK failed is not fit for reuse.
    client.release(failed);
  };
  async function* copyOut(sql: string): AsyncGenerator<Buffer> {
    copying = true;
    const stream = client.query(copyTo(sql));
    try {
      for await (const chunk of stream) yield chunk as Buffer;
      copying = false;
    } finally {
      if (copying) stream.destroy();
    }
  }
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await paceByClient(client);
    return { client, copyOut, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Yields what `source` yields, then closes the snapshot, also when the reader stops early. */
export async function* closing<T>(snapshot: Snapshot, source: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* source;
  } finally {
    await snapshot.close();
  }
}

/** How many added and removed prefixes an event lists; a larger change says only "replaced". */
export const DIFF_MAX = 1000;

const COPY_CHUNK_BYTES = 64 * 1024;

/** One prefix of a request body and where it was: a CSV line number or a JSON array index. */
export interface PrefixEntry {
  prefix: string;
  at: number;
}

/** COPY text, batched: one write per prefix would cost more than the copy itself. */
async function* copyRows(entries: AsyncIterable<PrefixEntry>, row: (e: PrefixEntry) => string): AsyncGenerator<string> {
  let chunk = '';
  for await (const entry of entries) {
    chunk += row(entry);
    if (chunk.length >= COPY_CHUNK_BYTES) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

interface SetChange {
  n: string;
  sample: string[] | null;
}

/** The body named the same prefix twice; `first` is unknown when the rows went straight in. */
export class RepeatedPrefixError extends Error {
  constructor(
    readonly prefix: string,
    readonly at: number | undefined,
    readonly first: number | undefined,
  ) {
    super(`prefix ${prefix} is given more than once`);
  }
}

export interface EntriesChange {
  received: number;
  added: SetChange;
  removed: SetChange;
  /** Prefixes of the body the table already had. */
  unchanged: number;
}

/**
 * A table's entries from a stream of valid prefixes, in the caller's transaction, in memory that
 * stays flat whatever the size. A failing source (a bad line) aborts the COPY and the caller
 * rolls back: nothing is written. A prefix given twice is a RepeatedPrefixError.
 *
 * A table with entries takes two steps: `stageEntries` copies the body into a temporary table
 * (no WAL, no index) before the caller locks the table, and `mergeStagedEntries` then touches
 * only what differs, one set operation each way, so the table is held for the merge, not for a
 * slow client's upload. An empty table takes the rows straight from COPY (`fillEmptyTable`: one
 * pass, the unique index catching a repeat), under the lock.
 */
export async function stageEntries(tx: PoolClient, entries: AsyncIterable<PrefixEntry>): Promise<StagedEntries> {
  await paceByClient(tx);
  await tx.query('CREATE TEMP TABLE prefix_import (prefix text NOT NULL, at integer NOT NULL) ON COMMIT DROP');
  const copy = tx.query(copyFrom('COPY prefix_import (prefix, at) FROM STDIN'));
  await pipeline(Readable.from(copyRows(entries, (e) => `${e.prefix}\t${e.at}\n`)), copy);
  // Without statistics the planner would compare a million rows pairwise instead of hashing them.
  await tx.query('ANALYZE prefix_import');
  const { rows: repeats } = await tx.query<{ prefix: string; first: number; at: number }>(
    `SELECT prefix, min(at) AS first, max(at) AS at FROM prefix_import GROUP BY prefix HAVING count(*) > 1
      ORDER BY max(at) LIMIT 1`,
  );
  const repeat = repeats[0];
  if (repeat) throw new RepeatedPrefixError(repeat.prefix, repeat.at, repeat.first);
  return { received: copy.rowCount };
}

/** What stageEntries left for mergeStagedEntries, in the same transaction. */
export interface StagedEntries {
  received: number;
}

/**
 * Lifts the statement and idle-transaction timeouts for the rest of the caller's transaction: a
 * stream paced by its HTTP client (an import, an export, the snapshot) takes as long as the
 * client does, bounded by the listener's request and idle timeouts instead (HTTP_*).
 */
export async function paceByClient(tx: PoolClient): Promise<void> {
  await tx.query('SET LOCAL statement_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0');
  withoutAnswerDeadline(tx);
}

/** An empty table's rows straight from COPY, under the caller's lock on the table. */
export async function fillEmptyTable(
  tx: PoolClient,
  tableId: string,
  entries: AsyncIterable<PrefixEntry>,
  actor: string,
): Promise<EntriesChange> {
  await paceByClient(tx);
  const copy = tx.query(
    copyFrom('COPY ops.prefix_table_entries (prefix_table_id, prefix, created_by, updated_by) FROM STDIN'),
  );
  const fixed = `\t${actor}\t${actor}\n`;
  try {
    await pipeline(Readable.from(copyRows(entries, (e) => `${tableId}\t${e.prefix}${fixed}`)), copy);
  } catch (err) {
    const repeated = /\(prefix_table_id, prefix\)=\([^,]+, ([0-9]+)\)/.exec(
      String((err as { detail?: unknown }).detail),
    );
    if (isUniqueViolation(err, 'prefix_table_entries_live_key') && repeated?.[1]) {
      throw new RepeatedPrefixError(repeated[1], undefined, undefined);
    }
    throw err;
  }
  const n = String(copy.rowCount);
  const sample =
    copy.rowCount <= DIFF_MAX
      ? (
          await tx.query<{ prefix: string }>(
            'SELECT prefix FROM ops.prefix_table_entries WHERE prefix_table_id = $1 AND deleted_at IS NULL',
            [tableId],
          )
        ).rows.map((r) => r.prefix)
      : null;
  return { received: copy.rowCount, added: { n, sample }, removed: { n: '0', sample: [] }, unchanged: 0 };
}

/** Makes the staged body the table's content (`replace`) or adds what is new (`add`), under the caller's lock. */
export async function mergeStagedEntries(
  tx: PoolClient,
  tableId: string,
  { received }: StagedEntries,
  mode: 'replace' | 'add',
  actor: string,
): Promise<EntriesChange> {
  const unchanged = Number(
    (
      await tx.query<{ n: string }>(
        `SELECT count(*) AS n FROM prefix_import i JOIN ops.prefix_table_entries e
            ON e.prefix_table_id = $1 AND e.deleted_at IS NULL AND e.prefix = i.prefix`,
        [tableId],
      )
    ).rows[0]?.n ?? 0,
  );
  // One sample past DIFF_MAX tells the caller the change is too large to list.
  const removed =
    mode === 'add'
      ? { n: '0', sample: [] }
      : (
          await tx.query<SetChange>(
            `WITH removed AS (
               UPDATE ops.prefix_table_entries e SET deleted_at = now(), updated_by = $2
                WHERE e.prefix_table_id = $1 AND e.deleted_at IS NULL
                  AND NOT EXISTS (SELECT 1 FROM prefix_import i WHERE i.prefix = e.prefix)
               RETURNING e.prefix)
             SELECT count(*) AS n, (SELECT array_agg(prefix) FROM (SELECT prefix FROM removed LIMIT $3) s) AS sample
               FROM removed`,
            [tableId, actor, DIFF_MAX + 1],
          )
        ).rows[0]!;
  const added = (
    await tx.query<SetChange>(
      `WITH added AS (
         INSERT INTO ops.prefix_table_entries (prefix_table_id, prefix, created_by, updated_by)
         SELECT $1::uuid, i.prefix, $2, $2 FROM prefix_import i
          WHERE NOT EXISTS (SELECT 1 FROM ops.prefix_table_entries e
                             WHERE e.prefix_table_id = $1 AND e.deleted_at IS NULL AND e.prefix = i.prefix)
         RETURNING prefix)
       SELECT count(*) AS n, (SELECT array_agg(prefix) FROM (SELECT prefix FROM added LIMIT $3) s) AS sample
         FROM added`,
      [tableId, actor, DIFF_MAX + 1],
    )
  ).rows[0]!;
  await tx.query('DROP TABLE prefix_import');
  return { received, added, removed, unchanged };
}

/** A new version with the live entries' count and hash (SHA-256 of the sorted prefixes joined by `\n`). */
export async function bumpTableContent(tx: PoolClient, id: string, actor: string): Promise<PrefixTable> {
  const { rows } = await tx.query<PrefixTableRow>(
    `WITH content AS (
       SELECT count(*)::int AS n,
              coalesce(encode(sha256(convert_to(string_agg(prefix, E'\\n' ORDER BY prefix), 'UTF8')), 'hex'), $3) AS hash
         FROM ops.prefix_table_entries WHERE prefix_table_id = $1 AND deleted_at IS NULL)
     UPDATE ops.prefix_tables t
        SET version = t.version + 1, entry_count = content.n, content_hash = content.hash, updated_by = $2
       FROM content WHERE t.id = $1 RETURNING ${COLUMNS.split(', ')
         .map((c) => `t.${c}`)
         .join(', ')}`,
    [id, actor, EMPTY_CONTENT_HASH],
  );
  return toTable(rows[0] as PrefixTableRow);
}

/**
 * `operator.config.prefix_table_updated` for every announced, live operator whose live rules use
 * the table, each with that operator's next version: one UPDATE and one INSERT whatever their
 * number. Operators still at version 0 (their `created` not out yet) will carry the table then.
 */
export async function fanOutTableChange(
  tx: PoolClient,
  change: PrefixTableChange,
  actor: string,
): Promise<Array<{ operatorId: string; version: number }>> {
  // The operators are locked in id order first: two imports sharing operators never deadlock.
  const { rows: candidates } = await tx.query<{ id: string }>(
    `SELECT o.id FROM ops.operators o
      WHERE o.id IN (SELECT r.operator_id FROM ops.routing_rules r
                      WHERE r.prefix_table_id = $1 AND r.deleted_at IS NULL)
        AND o.deleted_at IS NULL AND o.version > 0 AND o.status NOT IN ('ONBOARDING_FAILED', 'DELETED')
      ORDER BY o.id FOR NO KEY UPDATE`,
    [change.prefixTableId],
  );
  // A second statement, so a second snapshot: a rule write that held one of them (moving its
  // rules off this table: it locks only the tables it moves to) has committed by now, and is
  // seen. The first statement's snapshot re-checks only the operator's row, not its rules.
  const { rows } = await tx.query<{ id: string; version: string }>(
    `UPDATE ops.operators o SET version = o.version + 1, updated_by = $3
      WHERE o.id = ANY($2::uuid[])
        AND o.deleted_at IS NULL AND o.version > 0 AND o.status NOT IN ('ONBOARDING_FAILED', 'DELETED')
        AND EXISTS (SELECT 1 FROM ops.routing_rules r
                     WHERE r.operator_id = o.id AND r.prefix_table_id = $1 AND r.deleted_at IS NULL)
     RETURNING o.id, o.version`,
    [change.prefixTableId, candidates.map((c) => c.id), actor],
  );
  const bumped = rows
    .map((r) => ({ operatorId: r.id, version: Number(r.version) }))
    .sort((a, b) => a.operatorId.localeCompare(b.operatorId));
  await appendConfigEvents(
    tx,
    bumped.map(({ operatorId, version }) => ({
      change: 'prefix_table_updated' as const,
      operatorId,
      version,
      actor,
      data: change,
    })),
  );
  return bumped;
}
