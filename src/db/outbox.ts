import type { PoolClient } from 'pg';
import type { Db } from '../clients/postgres';

/**
 * The outbox's SQL (ops.event_outbox and its queue ops.event_outbox_pending,
 * migrations/…_outbox-pending-queue.sql): the append a change makes in its own transaction, and
 * what the relay (src/events/outbox.ts) reads and writes. Statements the relay runs after nearly
 * every commit are named, so each connection plans them once.
 */

/** One event as the outbox stores it; `payload` is the envelope's JSON, published as it is. */
export interface OutboxInsert {
  eventId: string;
  subject: string;
  operatorId: string;
  version: number;
  payload: string;
  actor: string;
}

/** Appends the events in one statement; their ids (the relay's order) follow the order given. */
export async function insertOutboxEvents(tx: PoolClient, events: readonly OutboxInsert[]): Promise<void> {
  // WITH ORDINALITY keeps the ids in the order of `events`.
  await tx.query({
    name: 'outbox-append',
    text: `INSERT INTO ops.event_outbox (event_id, subject, operator_id, version, payload, created_by, updated_by)
           SELECT e.event_id, e.subject, e.operator_id, e.version, e.payload, e.actor, e.actor
             FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::bigint[], $5::json[], $6::text[])
                  WITH ORDINALITY AS e(event_id, subject, operator_id, version, payload, actor, n)
            ORDER BY e.n`,
    values: [
      events.map((e) => e.eventId),
      events.map((e) => e.subject),
      events.map((e) => e.operatorId),
      events.map((e) => e.version),
      events.map((e) => e.payload),
      events.map((e) => e.actor),
    ],
  });
}

// Any fixed 64-bit key: serialises relays across replicas so per-operator order holds.
export const RELAY_LOCK_KEY = 0x6f70_6d67_6d74;

/**
 * Takes the relays' session lock on this connection: `wait` queues for it, `try` answers false at
 * once when another session holds it. Released by releaseRelayLock, or by PostgreSQL when the
 * connection dies.
 */
export async function takeRelayLock(client: PoolClient, mode: 'try' | 'wait'): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>(
    mode === 'try'
      ? { name: 'outbox-try-lock', text: 'SELECT pg_try_advisory_lock($1) AS ok', values: [RELAY_LOCK_KEY] }
      : { name: 'outbox-lock', text: 'SELECT true AS ok FROM pg_advisory_lock($1)', values: [RELAY_LOCK_KEY] },
  );
  return rows[0]?.ok === true;
}

export async function releaseRelayLock(client: PoolClient): Promise<void> {
  await client.query({ name: 'outbox-unlock', text: 'SELECT pg_advisory_unlock($1)', values: [RELAY_LOCK_KEY] });
}

export interface QueuedOutboxRow {
  id: string;
  eventId: string;
  subject: string;
  operatorId: string | null;
  /** The event's JSON as it was written (a json column, read as text); '' when it is not to be sent. */
  body: string;
  createdAt: Date;
  /** Seconds since the row was written, by PostgreSQL's clock at the read. */
  ageS: number;
  /** Marked published by someone else (ops' skip, an earlier version's relay): only dequeued. */
  published: boolean;
  /** Parked, or behind a parked event of its operator: nothing of that operator goes out. */
  held: boolean;
  /** The first read's snapshot (pg_current_snapshot()), for the reads after it in the same pass. */
  snapshot: string | null;
}

/**
 * The queue's next `limit` rows after row `afterId`, in id order. Parked rows and the rows behind
 * them come back too, flagged `held`: a batch is always `limit` rows while more are queued,
 * however many of them are parked. `asOf`, the snapshot an earlier read returned, leaves out
 * rows queued by transactions that had not committed when it was taken: the batches of one pass
 * are then one consistent view, in which an operator's rows are in version order without gaps.
 */
export async function readOutboxQueue(
  client: PoolClient,
  afterId: string,
  limit: number,
  asOf: string | null = null,
): Promise<QueuedOutboxRow[]> {
  // The limit stays a literal (and in the name), so that the generic plan knows how many rows it
  // is for. The queue's ids are taken first, as an array of primary keys: the outbox keeps
  // published rows for days, and a join could walk them. A parked row's payload (too large to
  // publish) is not read again; neither is one already published. Events without an operator
  // keep their order among themselves: one of them parked holds the others (IS NOT DISTINCT FROM).
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`batch size must be a positive integer: ${limit}`);
  const { rows } = await client.query<QueuedOutboxRow>({
    name: `outbox-queue-${limit}`,
    text: `SELECT o.id, o.event_id AS "eventId", o.subject, o.operator_id AS "operatorId", o.created_at AS "createdAt",
            CASE WHEN o.failed_at IS NULL AND o.published_at IS NULL THEN o.payload::text ELSE '' END AS body,
            extract(epoch FROM clock_timestamp() - o.created_at)::float8 AS "ageS",
            o.published_at IS NOT NULL AS published,
            o.failed_at IS NOT NULL
              OR EXISTS (SELECT 1 FROM ops.event_outbox f
                          WHERE f.failed_at IS NOT NULL AND f.published_at IS NULL
                            AND f.operator_id IS NOT DISTINCT FROM o.operator_id AND f.id < o.id) AS held,
            CASE WHEN $2::pg_snapshot IS NULL THEN pg_current_snapshot()::text END AS snapshot
       FROM ops.event_outbox o
      WHERE o.id = ANY(ARRAY(SELECT id FROM ops.event_outbox_pending
                              WHERE id > $1
                                AND ($2::pg_snapshot IS NULL OR xact IS NULL OR pg_visible_in_snapshot(xact, $2::pg_snapshot))
                              ORDER BY id LIMIT ${limit}))
      ORDER BY o.id`,
    values: [afterId, asOf],
  });
  return rows;
}

/**
 * Dequeues the rows and stamps published_at, in one statement. The stamp is a HOT update (no
 * index names the columns it sets) and sets updated_at itself, so the touch trigger is skipped.
 * A row someone else marked keeps its time.
 */
export async function markOutboxPublished(client: PoolClient, ids: readonly string[], actor: string): Promise<void> {
  await client.query({
    name: 'outbox-mark',
    text: `WITH dequeued AS (DELETE FROM ops.event_outbox_pending WHERE id = ANY($1::bigint[]))
           UPDATE ops.event_outbox SET published_at = now(), updated_at = now(), updated_by = $2
            WHERE id = ANY($1::bigint[]) AND published_at IS NULL`,
    values: [ids, actor],
  });
}

/** Parks a row that can never be published: it stays queued, and holds its operator's later ones. */
export async function parkOutboxEvent(client: PoolClient, id: string, error: string, actor: string): Promise<void> {
  await client.query('UPDATE ops.event_outbox SET failed_at = now(), last_error = $2, updated_by = $3 WHERE id = $1', [
    id,
    error,
    actor,
  ]);
}

export interface OutboxBacklog {
  /** Events committed and not yet on the stream (parked ones included). */
  pending: number;
  /** Age of the oldest of them not parked, in seconds; 0 when there is none. */
  oldestAgeS: number;
  /** Events parked because they can never be published: they need ops (docs/runbook.md). */
  parked: number;
}

export async function readOutboxBacklog(db: Db): Promise<OutboxBacklog> {
  const { rows } = await db.query<{ pending: string; oldest_age_s: number | null; parked: string }>(
    `SELECT count(*) AS pending,
            extract(epoch FROM now() - min(created_at) FILTER (WHERE failed_at IS NULL))::float8 AS oldest_age_s,
            count(*) FILTER (WHERE failed_at IS NOT NULL) AS parked
       FROM ops.event_outbox_pending p JOIN ops.event_outbox o ON o.id = p.id WHERE o.published_at IS NULL`,
  );
  const r = rows[0];
  return { pending: Number(r?.pending ?? 0), oldestAgeS: r?.oldest_age_s ?? 0, parked: Number(r?.parked ?? 0) };
}
