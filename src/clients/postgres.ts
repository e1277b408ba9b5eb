import { createHash } from 'node:crypto';
import { Pool, type PoolClient } from 'pg';
import type { Config } from '../platform/config';
import type { Logger } from '../platform/logger';
import { tagPostgresError } from './dependency-errors';

export type Db = Pool;

/**
 * The service's pool. Every wait is bounded (PG_*_MS): for a connection, a statement, a lock,
 * a transaction left idle; an answer that runs out is an error the API maps to a 503 naming
 * PostgreSQL (src/clients/dependency-errors.ts). Streams paced by their client (imports,
 * exports, the snapshot) lift the statement timeout for their own transaction.
 *
 * The statement timeout is PostgreSQL's own: a server that stops answering on an open
 * connection (frozen, partitioned away) never sends it, and TCP takes many minutes to give up.
 * So a statement unanswered ANSWER_MARGIN_MS past the statement timeout ends its connection
 * here, and its caller gets the failure naming PostgreSQL.
 */
export function createPool(config: Config['postgres'], log?: Logger): Pool {
  const pool = new Pool({
    connectionString: config.url,
    max: config.poolMax,
    application_name: 'operator-management',
    connectionTimeoutMillis: config.connectTimeoutMs,
    statement_timeout: config.statementTimeoutMs,
    lock_timeout: config.lockTimeoutMs,
    idle_in_transaction_session_timeout: config.idleInTransactionTimeoutMs,
    // No JIT: every statement here is short, and PostgreSQL compiles any plan it costs above
    // jit_above_cost (a relay batch read, costed by its per-row look-up of parked events, took
    // 15 ms of LLVM per 500 rows: more than half of PostgreSQL's CPU in a flush).
    options: '-c jit=off',
  });
  // A connect refused on the network says which dependency it was. pg-pool calls connect with a
  // callback itself (for pool.query): that form is passed through untouched.
  const connect = pool.connect.bind(pool) as (callback?: unknown) => Promise<PoolClient> | undefined;
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  Object.assign(pool, {
    connect: (callback?: unknown) =>
      callback ? connect(callback) : connect()?.catch((err: unknown) => Promise.reject(tagPostgresError(err))),
    query: (...args: unknown[]) => query(...args).catch((err: unknown) => Promise.reject(tagPostgresError(err))),
  });
  const warn = (err: Error) => log?.warn({ err: err.message }, 'PostgreSQL client failed');
  // pg-pool listens for errors only on idle clients: a connection that dies while checked out
  // (a restart, a failover) would otherwise emit an unhandled 'error' and end the process. The
  // query in flight still rejects, so its caller sees the failure.
  pool.on('error', warn);
  pool.on('connect', (client) => {
    client.on('error', warn);
    guardQueries(client, config.statementTimeoutMs > 0 ? config.statementTimeoutMs + ANSWER_MARGIN_MS : 0);
  });
  pool.on('acquire', (client) => pacedByClient.delete(client));
  return pool;
}

/** How long past the statement timeout a statement may go unanswered before its connection is given up. */
const ANSWER_MARGIN_MS = 2000;

/** Connections whose transaction lifted the statement timeout (until they are checked out again). */
const pacedByClient = new WeakSet<PoolClient>();

/**
 * For a transaction that lifts the statement timeout (`SET LOCAL statement_timeout = 0`): its
 * statements then have no deadline here either, until the connection is checked out again.
 */
export function withoutAnswerDeadline(tx: PoolClient): void {
  pacedByClient.add(tx);
}

/** Ends a connection that stopped answering: its statement in flight fails, and the pool drops it. */
function giveUp(client: PoolClient): void {
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

function notAnswered(ms: number): Error {
  return Object.assign(new Error(`PostgreSQL did not answer within ${ms} ms`), { dependency: 'PostgreSQL' });
}

/**
 * A checked-out connection's failures name PostgreSQL too (a transaction's statements, a COPY):
 * a connection reset in the middle of a transaction is a bare ECONNRESET otherwise, a 500. And
 * each statement's answer is awaited `deadlineMs` at most (0: no deadline), but for a COPY
 * stream, which its client paces.
 */
function guardQueries(client: PoolClient, deadlineMs: number): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  const deadline = () => (deadlineMs > 0 && !pacedByClient.has(client) ? deadlineMs : 0);
  Object.assign(client, {
    query: (...args: unknown[]) => {
      const ms = deadline();
      const callback = args[args.length - 1];
      if (typeof callback === 'function' && ms > 0) {
        // The callback form (pg-pool's pool.query): answered once, by the server or the deadline.
        let answered = false;
        const timer = setTimeout(() => {
          answered = true;
          giveUp(client);
          (callback as (err: Error) => void)(notAnswered(ms));
        }, ms);
        args[args.length - 1] = (...answer: unknown[]) => {
          if (answered) return;
          answered = true;
          clearTimeout(timer);
          (callback as (...a: unknown[]) => void)(...answer);
        };
        try {
          return query(...args);
        } catch (err) {
          // Refused before it went out (pg-pool answers the callback itself): no deadline to keep.
          answered = true;
          clearTimeout(timer);
          throw err;
        }
      }
      const result = query(...args);
      if (result instanceof Promise) {
        const bounded = ms > 0 ? answeredWithin(client, result, ms) : result;
        return bounded.catch((err: unknown) => Promise.reject(tagPostgresError(err)));
      }
      // A submittable (a COPY stream): tagged where it fails, before its reader sees the error.
      const stream = result as { prependListener?: (event: 'error', fn: (err: unknown) => void) => unknown };
      stream?.prependListener?.('error', tagPostgresError);
      return result;
    },
  });
}

/**
 * Runs fn in one transaction: committed when it returns, rolled back when it throws. A
 * connection whose prepared statements a migration made stale (a selected column's type changed)
 * is closed rather than pooled again, so that the failure is one answer, not every later one on
 * it (pool.query closes a connection after any error already).
 *
 * `snapshot`: REPEATABLE READ, for a transaction whose statement both waits for a row lock and
 * reads other rows (under READ COMMITTED it would read them as they were before the wait). A
 * concurrent change then fails it with serialization_failure, and fn runs again on a fresh
 * snapshot, up to SNAPSHOT_ATTEMPTS times.
 */
export async function inTransaction<T>(
  pool: Pool,
  fn: (tx: PoolClient) => Promise<T>,
  options: { snapshot?: boolean } = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await attemptTransaction(pool, fn, options.snapshot ? 'BEGIN ISOLATION LEVEL REPEATABLE READ' : 'BEGIN');
    } catch (err) {
      if (!options.snapshot || attempt >= SNAPSHOT_ATTEMPTS || !isSerializationFailure(err)) throw err;
    }
  }
}

const SNAPSHOT_ATTEMPTS = 3;

function answeredWithin<T>(client: PoolClient, answer: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const unanswered = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      giveUp(client);
      reject(notAnswered(ms));
    }, ms);
  });
  return Promise.race([answer, unanswered]).finally(() => clearTimeout(timer));
}

async function attemptTransaction<T>(pool: Pool, fn: (tx: PoolClient) => Promise<T>, begin: string): Promise<T> {
  const tx = await pool.connect();
  let stale = false;
  try {
    await tx.query(begin);
    const result = await fn(tx);
    await tx.query('COMMIT');
    return result;
  } catch (err) {
    stale = isStalePlan(err);
    await tx.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    tx.release(stale);
  }
}

/** PostgreSQL's serialization_failure: a REPEATABLE READ transaction met a concurrent change. */
function isSerializationFailure(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === '40001';
}

/** A prepared statement whose result a migration changed: PostgreSQL refuses it on that connection. */
function isStalePlan(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  return e?.code === '0A000' && typeof e.message === 'string' && e.message.includes('cached plan must not change');
}

/** PostgreSQL's unique_violation, optionally on one named constraint or index. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; constraint?: unknown };
  return e.code === '23505' && (constraint === undefined || e.constraint === constraint);
}

const statementNames = new Map<string, string>();
/**
 * Texts named at most, per process: each is prepared on every pooled connection that runs it,
 * and a metadata PATCH may set any subset of its fields.
 */
const MAX_NAMED_STATEMENTS = 64;

/**
 * A name for a statement whose text is built from parts (which columns a change sets): the same
 * text gets the same name, so PostgreSQL parses and plans it once per connection. Hashed because
 * PostgreSQL keeps only the first 63 bytes of a statement's name. Undefined (an unnamed
 * statement, planned each time) once MAX_NAMED_STATEMENTS texts have names.
 */
export function statementName(prefix: string, text: string): string | undefined {
  let name = statementNames.get(text);
  if (name === undefined && statementNames.size < MAX_NAMED_STATEMENTS) {
    name = `${prefix}-${createHash('sha1').update(text).digest('base64url').slice(0, 16)}`;
    statementNames.set(text, name);
  }
  return name;
}
