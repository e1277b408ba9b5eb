import { createHash } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Db } from '../clients/postgres';
import type { Logger } from '../logger';
import type { AuthState } from './auth';
import { HttpProblem } from './problem';

/**
 * `Idempotency-Key` on POST: the first accepted answer is kept and replayed for a repeat with the
 * same key and body; nothing runs twice. A refused request (an error) is not kept: the client may
 * simply retry it.
 *
 * The body is hashed without its `password` fields: a hash of an 8-character password would be a
 * copy of it that is cheap to brute-force, and the password lives only in Vault.
 */

const KEPT_HEADERS = ['location', 'etag'];
/** Longer than any request may take (the onboarding accept timeout is 15 s by default). */
const ABANDONED_AFTER = '2 minutes';

function withoutSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => k !== 'password')
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, withoutSecrets(v)]),
    );
  }
  return value;
}

interface KeptResponse {
  request_hash: string;
  status_code: number | null;
  response_body: unknown;
  response_headers: Record<string, string> | null;
}

export function idempotency(db: Db, log: Logger): Middleware<AuthState> {
  return async (ctx, next) => {
    const key = ctx.get('Idempotency-Key');
    if (ctx.method !== 'POST' || !key) return next();
    if (key.length > 200)
      throw new HttpProblem(400, 'Invalid request', 'Idempotency-Key is longer than 200 characters.', {
        errors: [{ field: 'Idempotency-Key', message: 'at most 200 characters' }],
      });

    const body = (ctx.request as { body?: unknown }).body;
    const hash = createHash('sha256')
      .update(`${ctx.method} ${ctx.path}\n${JSON.stringify(withoutSecrets(body))}`)
      .digest('hex');
    const actor = ctx.state.actor;

    // A claim without an answer for this long belongs to a process that died mid-request.
    await db.query(
      `DELETE FROM ops.idempotency_keys
        WHERE actor = $1 AND key = $2 AND status_code IS NULL AND updated_at < now() - interval '${ABANDONED_AFTER}'`,
      [actor, key],
    );
    const claimed = await db.query(
      `INSERT INTO ops.idempotency_keys (actor, key, request_hash, created_by, updated_by)
       VALUES ($1, $2, $3, $1, $1) ON CONFLICT (actor, key) DO NOTHING`,
      [actor, key, hash],
    );
    if (claimed.rowCount === 0) {
      const { rows } = await db.query<KeptResponse>(
        'SELECT request_hash, status_code, response_body, response_headers FROM ops.idempotency_keys WHERE actor = $1 AND key = $2',
        [actor, key],
      );
      const kept = rows[0];
      if (!kept)
        throw new HttpProblem(409, 'Conflict', 'A request with this Idempotency-Key is being retried; try again.');
      if (kept.status_code === null) {
        throw new HttpProblem(409, 'Conflict', 'A request with this Idempotency-Key is still in progress.');
      }
      if (kept.request_hash !== hash) {
        throw new HttpProblem(422, 'Idempotency key reused', 'This Idempotency-Key was used with a different request.');
      }
      for (const [name, value] of Object.entries(kept.response_headers ?? {})) ctx.set(name, value);
      ctx.set('Idempotent-Replayed', 'true');
      ctx.status = kept.status_code;
      ctx.body = kept.response_body;
      return;
    }

    try {
      await next();
    } catch (err) {
      // Nothing was accepted: free the key so the client's retry runs again.
      await db.query('DELETE FROM ops.idempotency_keys WHERE actor = $1 AND key = $2', [actor, key]);
      throw err;
    }
    const headers = Object.fromEntries(
      KEPT_HEADERS.flatMap((h) => (ctx.response.get(h) ? [[h, ctx.response.get(h)]] : [])),
    );
    // The work is done: failing to keep the answer must not turn it into an error for the client.
    await db
      .query(
        `UPDATE ops.idempotency_keys SET status_code = $3, response_body = $4, response_headers = $5, updated_by = $1
          WHERE actor = $1 AND key = $2`,
        [actor, key, ctx.status, JSON.stringify(ctx.body ?? null), headers],
      )
      .catch((err: unknown) => log.warn({ err: (err as Error).message, key }, 'could not keep an idempotent answer'));
  };
}
