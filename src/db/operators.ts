import type { Pool, PoolClient } from 'pg';
import { statementName } from '../clients/postgres';
import { assertTransition } from '../domain/lifecycle';
import type { Operator, OperatorDraft, OperatorMetadata, OperatorStatus } from '../domain/operator';
import { insertRoutingRules } from './routing-rules';
import { replaceTpsLimit } from './tps-limits';
import { appendConfigEvent } from '../events/outbox';
import type { ConfigChange } from '../events/envelope';
import type { ConfigEventData } from '../events/catalog';

/** SQL for operators and what hangs off them. Every read excludes soft-deleted rows. */

type Queryable = Pool | PoolClient;

interface OperatorRow {
  id: string;
  name: string;
  host: string;
  port: number;
  system_id: string;
  system_type: string;
  bind_type: Operator['bindType'];
  tls: boolean;
  window_size: number;
  enquire_link_interval_s: number;
  labels: Record<string, string>;
  status: OperatorStatus;
  status_reason: string | null;
  version: string;
  credentials_version: number | null;
  created_at: Date;
  created_by: string;
  updated_at: Date;
  updated_by: string;
  tps_cap: number | null;
  burst_window_ms: number | null;
  enforcement_mode: 'hard' | 'shape' | 'monitor' | null;
}

// Columns named, not `o.*`: a prepared statement must keep its result's shape when a later
// migration adds a column while a replica runs.
const OPERATOR_COLUMNS = `o.id, o.name, o.host, o.port, o.system_id, o.system_type, o.bind_type, o.tls, o.window_size,
  o.enquire_link_interval_s, o.labels, o.status, o.status_reason, o.version, o.credentials_version,
  o.created_at, o.created_by, o.updated_at, o.updated_by, t.tps_cap, t.burst_window_ms, t.enforcement_mode`;
const WITH_TPS_LIMIT = 'LEFT JOIN ops.tps_limits t ON t.operator_id = o.id AND t.deleted_at IS NULL';
const SELECT_OPERATOR = `SELECT ${OPERATOR_COLUMNS} FROM ops.operators o ${WITH_TPS_LIMIT}`;

function toOperator(r: OperatorRow): Operator {
  return {
    id: r.id,
    name: r.name,
    host: r.host,
    port: r.port,
    systemId: r.system_id,
    systemType: r.system_type,
    bindType: r.bind_type,
    tls: r.tls,
    windowSize: r.window_size,
    enquireLinkIntervalS: r.enquire_link_interval_s,
    labels: r.labels,
    status: r.status,
    statusReason: r.status_reason,
    version: Number(r.version),
    credentialsVersion: r.credentials_version,
    tpsLimit:
      r.tps_cap === null || r.burst_window_ms === null || r.enforcement_mode === null
        ? null
        : { tpsCap: r.tps_cap, burstWindowMs: r.burst_window_ms, enforcementMode: r.enforcement_mode },
    createdAt: r.created_at.toISOString(),
    createdBy: r.created_by,
    updatedAt: r.updated_at.toISOString(),
    updatedBy: r.updated_by,
  };
}

/**
 * One operator by id. Named statements (parsed and planned once per connection): every admin
 * read and every change starts here.
 */
export async function findOperator(
  db: Queryable,
  id: string,
  forUpdate = false,
  includeDeleted = false,
): Promise<Operator | undefined> {
  const { rows } = await db.query<OperatorRow>({
    name: `operator${includeDeleted ? '-with-deleted' : ''}${forUpdate ? '-for-update' : ''}`,
    text: `${SELECT_OPERATOR} WHERE o.id = $1 ${includeDeleted ? '' : 'AND o.deleted_at IS NULL'} ${forUpdate ? 'FOR UPDATE OF o' : ''}`,
    values: [id],
  });
  return rows[0] && toOperator(rows[0]);
}

/** The live operator holding an SMPP endpoint and account, if any (the partial unique index `operators_endpoint_live_key`). */
export async function findByEndpoint(
  db: Queryable,
  endpoint: Pick<OperatorMetadata, 'host' | 'port' | 'systemId'>,
): Promise<Operator | undefined> {
  const { rows } = await db.query<OperatorRow>(
    `${SELECT_OPERATOR}
      WHERE lower(o.host) = lower($1) AND o.port = $2 AND o.system_id = $3
        AND o.deleted_at IS NULL AND o.status <> 'ONBOARDING_FAILED'`,
    [endpoint.host, endpoint.port, endpoint.systemId],
  );
  return rows[0] && toOperator(rows[0]);
}

export interface ListQuery {
  status?: OperatorStatus;
  after?: { createdAt: string; id: string };
  limit: number;
}

/** Every live operator (neither ONBOARDING_FAILED nor DELETED), in id order: the routing snapshot's. */
export async function listLiveOperators(db: Queryable): Promise<Operator[]> {
  const { rows } = await db.query<OperatorRow>(
    `${SELECT_OPERATOR} WHERE o.deleted_at IS NULL AND o.status NOT IN ('ONBOARDING_FAILED', 'DELETED') ORDER BY o.id`,
  );
  return rows.map(toOperator);
}

export async function listOperators(db: Queryable, q: ListQuery): Promise<Operator[]> {
  const params: unknown[] = [q.limit];
  const where = ['o.deleted_at IS NULL'];
  if (q.status) {
    params.push(q.status);
    where.push(`o.status = $${params.length}`);
  }
  if (q.after) {
    params.push(q.after.createdAt, q.after.id);
    // The cursor carries milliseconds (a JS Date); compare at that precision or rows repeat.
    where.push(
      `(date_trunc('milliseconds', o.created_at), o.id) > ($${params.length - 1}::timestamptz, $${params.length}::uuid)`,
    );
  }
  const { rows } = await db.query<OperatorRow>(
    `${SELECT_OPERATOR} WHERE ${where.join(' AND ')} ORDER BY date_trunc('milliseconds', o.created_at), o.id LIMIT $1`,
    params,
  );
  return rows.map(toOperator);
}

/**
 * Inserts the operator (ONBOARDING, version 0: not yet announced) with its TPS limit and rules.
 * Idempotent on the operator id, so an activity retry after a lost reply is harmless.
 */
export async function insertDraft(tx: PoolClient, draft: OperatorDraft, actor: string): Promise<Operator> {
  const m = draft.metadata;
  const inserted = await tx.query(
    `INSERT INTO ops.operators (id, name, host, port, system_id, system_type, bind_type, tls, window_size,
                                enquire_link_interval_s, labels, status, version, created_by, updated_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'ONBOARDING', 0, $12, $12)
     ON CONFLICT (id) DO NOTHING`,
    [
      draft.id,
      m.name,
      m.host,
      m.port,
      m.systemId,
      m.systemType,
      m.bindType,
      m.tls,
      m.windowSize,
      m.enquireLinkIntervalS,
      m.labels,
      actor,
    ],
  );
  if (inserted.rowCount === 1) {
    await replaceTpsLimit(tx, draft.id, draft.tpsLimit, actor);
    await insertRoutingRules(tx, draft.id, draft.routingRules, actor);
  }
  const operator = await findOperator(tx, draft.id);
  if (!operator) throw new Error(`operator ${draft.id} vanished after insert`);
  return operator;
}

/**
 * What a change sets besides the version, in domain fields. A new `status` goes through the
 * lifecycle (src/domain/lifecycle.ts); `DELETED` also sets `deleted_at`, the soft delete.
 */
export interface OperatorChanges extends Partial<Omit<OperatorMetadata, 'systemId'>> {
  status?: OperatorStatus;
  statusReason?: string | null;
  credentialsVersion?: number;
  /** The Vault version a running rotation waits for the connector to bind with. */
  pendingCredentialsVersion?: number | null;
}

const COLUMNS: Record<keyof OperatorChanges, string> = {
  name: 'name',
  host: 'host',
  port: 'port',
  systemType: 'system_type',
  bindType: 'bind_type',
  tls: 'tls',
  windowSize: 'window_size',
  enquireLinkIntervalS: 'enquire_link_interval_s',
  labels: 'labels',
  status: 'status',
  statusReason: 'status_reason',
  credentialsVersion: 'credentials_version',
  pendingCredentialsVersion: 'pending_credentials_version',
};

/**
 * The row's update for a change, returning the changed row (the `deleted` change too: it
 * soft-deletes the row it reports). `where` picks the row; its parameters come after the id
 * ($1) and the actor ($2). One named statement per set of columns changed (statementName bounds
 * how many).
 */
async function updateOperator(
  tx: PoolClient,
  id: string,
  changes: OperatorChanges,
  actor: string,
  where: { sql: string; values: unknown[] },
): Promise<Operator | undefined> {
  const entries = (Object.entries(changes) as Array<[keyof OperatorChanges, unknown]>).filter(
    ([, value]) => value !== undefined,
  );
  const first = 3 + where.values.length;
  const sets = entries.map(([field], i) => `${COLUMNS[field]} = $${first + i}`);
  if (changes.status === 'DELETED') sets.push('deleted_at = now()');
  const text = `WITH o AS (
      UPDATE ops.operators o SET ${[...sets, 'version = o.version + 1', 'updated_by = $2'].join(', ')}
       WHERE o.id = $1 AND ${where.sql} RETURNING o.*)
    SELECT ${OPERATOR_COLUMNS} FROM o ${WITH_TPS_LIMIT}`;
  const { rows } = await tx.query<OperatorRow>({
    name: statementName('commit-change', text),
    text,
    values: [id, actor, ...where.values, ...entries.map(([, v]) => v)],
  });
  return rows[0] && toOperator(rows[0]);
}

/**
 * The single way a config change commits: the row changes, the version goes up by one, and the
 * event with that version joins the outbox, all in the caller's transaction. The caller has
 * locked the row (findOperator(tx, id, true)) and passes what it read. An illegal status change
 * throws IllegalTransitionError and writes nothing.
 */
export async function commitChange<C extends ConfigChange>(
  tx: PoolClient,
  current: Operator,
  change: C,
  changes: OperatorChanges,
  actor: string,
  data: (next: Operator) => ConfigEventData<C> = (next) => ({ operator: next }) as ConfigEventData<C>,
): Promise<Operator> {
  if (changes.status !== undefined && changes.status !== current.status) {
    assertTransition(current.id, current.status, changes.status);
  }
  const next = await updateOperator(tx, current.id, changes, actor, {
    sql: 'o.version = $3',
    values: [current.version],
  });
  if (!next) throw new Error(`operator ${current.id} changed under a held lock`);
  await appendConfigEvent(tx, { change, operatorId: next.id, version: next.version, actor, data: data(next) });
  return next;
}

/** What the row was before a change that sets no status: its version, and its status, unchanged. */
export type BeforeChange = Pick<Operator, 'version' | 'status'>;

/**
 * commitChange for a change that needs nothing read first (a metadata PATCH): the row is updated
 * (which locks it) and `check` judges it as it was, throwing to refuse; the caller's transaction
 * then rolls the update back. One round trip fewer than a locked read and commitChange, on the
 * busiest admin write. It sets no status, so no lifecycle transition is involved. Undefined when
 * no live operator has this id. Run it in a snapshot transaction (inTransaction's `snapshot`):
 * the one statement that waits for the lock also reads the TPS limit it returns.
 */
export async function changeOperator<C extends ConfigChange>(
  tx: PoolClient,
  id: string,
  change: C,
  changes: Omit<OperatorChanges, 'status'>,
  actor: string,
  check: (before: BeforeChange) => void,
  data: (next: Operator) => ConfigEventData<C>,
): Promise<Operator | undefined> {
  const next = await updateOperator(tx, id, changes, actor, { sql: 'o.deleted_at IS NULL', values: [] });
  if (!next) return undefined;
  check({ version: next.version - 1, status: next.status });
  await appendConfigEvent(tx, { change, operatorId: next.id, version: next.version, actor, data: data(next) });
  return next;
}

/** Soft-deletes what hangs off a deleted operator: its routing rules and TPS limit. */
export async function softDeleteOperatorConfig(tx: PoolClient, operatorId: string, actor: string): Promise<void> {
  for (const table of ['ops.routing_rules', 'ops.tps_limits']) {
    await tx.query(
      `UPDATE ${table} SET deleted_at = now(), updated_by = $2 WHERE operator_id = $1 AND deleted_at IS NULL`,
      [operatorId, actor],
    );
  }
}

export interface CredentialRefs {
  status: OperatorStatus;
  credentialsVersion: number | null;
  pendingCredentialsVersion: number | null;
}

/** Which Vault versions an operator's credentials are at; a named statement: connectors ask often. */
export async function findCredentialRefs(db: Queryable, operatorId: string): Promise<CredentialRefs | undefined> {
  const { rows } = await db.query<{
    status: OperatorStatus;
    credentials_version: number | null;
    pending_credentials_version: number | null;
  }>({
    name: 'credentials-refs',
    text: `SELECT status, credentials_version, pending_credentials_version
             FROM ops.operators WHERE id = $1 AND deleted_at IS NULL`,
    values: [operatorId],
  });
  const r = rows[0];
  return (
    r && {
      status: r.status,
      credentialsVersion: r.credentials_version,
      pendingCredentialsVersion: r.pending_credentials_version,
    }
  );
}

/** The Vault version a running rotation has pending, if any. */
export async function findPendingCredentialsVersion(db: Queryable, operatorId: string): Promise<number | null> {
  return (await findCredentialRefs(db, operatorId))?.pendingCredentialsVersion ?? null;
}
