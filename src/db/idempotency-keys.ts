import type { Pool } from 'pg';

/** SQL for ops.idempotency_keys: one row per (actor, key), an answer once the request is done. */

export interface KeptAnswer {
  requestHash: string;
  /** null while the first request is still running. */
  statusCode: number | null;
  body: unknown;
  headers: Record<string, string>;
}

/** Longer than any request may take (the onboarding accept timeout is at most 60 s). */
const ABANDONED_AFTER = '2 minutes';

/**
 * Claims the key for this request; when it is already taken, returns what is kept for it.
 * A claim left unanswered for ABANDONED_AFTER belongs to a process that died: it is taken over.
 */
export async function claimKey(
  db: Pool,
  actor: string,
  key: string,
  requestHash: string,
): Promise<{ claimed: true } | { claimed: false; kept: KeptAnswer | undefined }> {
  await db.query(
    `DELETE FROM ops.idempotency_keys
      WHERE actor = $1 AND key = $2 AND status_code IS NULL AND updated_at < now() - interval '${ABANDONED_AFTER}'`,
    [actor, key],
  );
  const inserted = await db.query(
    `INSERT INTO ops.idempotency_keys (actor, key, request_hash, created_by, updated_by)
     VALUES ($1, $2, $3, $1, $1) ON CONFLICT (actor, key) DO NOTHING`,
    [actor, key, requestHash],
  );
  if (inserted.rowCount === 1) return { claimed: true };
  const { rows } = await db.query<{
    request_hash: string;
    status_code: number | null;
    response_body: unknown;
    response_headers: Record<string, string> | null;
  }>(
    `SELECT request_hash, status_code, response_body, response_headers
       FROM ops.idempotency_keys WHERE actor = $1 AND key = $2`,
    [actor, key],
  );
  const row = rows[0];
  return {
    claimed: false,
    kept: row && {
      requestHash: row.request_hash,
      statusCode: row.status_code,
      body: row.response_body,
      headers: row.response_headers ?? {},
    },
  };
}

export async function releaseKey(db: Pool, actor: string, key: string): Promise<void> {
  await db.query('DELETE FROM ops.idempotency_keys WHERE actor = $1 AND key = $2', [actor, key]);
}

export async function keepAnswer(
  db: Pool,
  actor: string,
  key: string,
  answer: { statusCode: number; body: unknown; headers: Record<string, string> },
): Promise<void> {
  await db.query(
    `UPDATE ops.idempotency_keys SET status_code = $3, response_body = $4, response_headers = $5, updated_by = $1
      WHERE actor = $1 AND key = $2`,
    [actor, key, answer.statusCode, JSON.stringify(answer.body ?? null), answer.headers],
  );
}
