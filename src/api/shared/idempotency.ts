import { createHash, createHmac } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Db } from '../../clients/postgres';
import { claimKey, keepAnswer, releaseKey } from '../../db/idempotency-keys';
import type { Logger } from '../../platform/logger';
import type { AuthState } from './auth';
import { eachOperation, problemDoc, type OpenApiDocument, type OperationDoc } from './openapi';
import { HttpProblem } from './problem';

/**
 * `Idempotency-Key` on POST: the first accepted answer is kept and replayed for a repeat with the
 * same key and body; nothing runs twice. A refused request (an error) is not kept: the client may
 * simply retry it.
 *
 * A `password` field counts as the HMAC of it under a server key (IDEMPOTENCY_HMAC_KEY): a key
 * reused with a new password is a 422, never a replay of the first rotation. A plain hash of an
 * 8-character password would be a copy of it that is cheap to brute-force; without the server
 * key, the stored HMAC tells nothing, and the password itself lives only in Vault.
 */

const KEPT_HEADERS = ['location', 'etag'];

/** The body in a canonical form (keys sorted) with each password replaced by its keyed HMAC. */
function canonical(value: unknown, hmacKey: string): unknown {
  if (Array.isArray(value)) return value.map((v) => canonical(v, hmacKey));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => [
          k,
          k === 'password'
            ? `hmac:${createHmac('sha256', hmacKey).update(String(v)).digest('hex')}`
            : canonical(v, hmacKey),
        ]),
    );
  }
  return value;
}

/** The longest Idempotency-Key accepted (the middleware and its OpenAPI parameter). */
const IDEMPOTENCY_KEY_MAX = 200;

export function idempotency(
  db: Db,
  log: Logger,
  options: { hmacKey: string; skip?: (ctx: { path: string }) => boolean },
): Middleware<AuthState> {
  return async (ctx, next) => {
    const key = ctx.get('Idempotency-Key');
    if (ctx.method !== 'POST' || !key || options.skip?.(ctx)) return next();
    if (key.length > IDEMPOTENCY_KEY_MAX)
      throw new HttpProblem(
        400,
        'Invalid request',
        `Idempotency-Key is longer than ${IDEMPOTENCY_KEY_MAX} characters.`,
        {
          errors: [{ field: 'Idempotency-Key', message: `at most ${IDEMPOTENCY_KEY_MAX} characters` }],
        },
      );

    const body = (ctx.request as { body?: unknown }).body;
    const hash = createHash('sha256')
      .update(`${ctx.method} ${ctx.path}\n${JSON.stringify(canonical(body, options.hmacKey))}`)
      .digest('hex');
    const actor = ctx.state.actor;

    const claim = await claimKey(db, actor, key, hash);
    if (!claim.claimed) {
      const { kept } = claim;
      if (!kept) {
        throw new HttpProblem(
          409,
          'Conflict',
          'A request with this Idempotency-Key is being retried; try again.',
          {},
          { 'Retry-After': '1' },
        );
      }
      if (kept.statusCode === null) {
        throw new HttpProblem(
          409,
          'Conflict',
          'A request with this Idempotency-Key is still in progress.',
          {},
          { 'Retry-After': '5' },
        );
      }
      if (kept.requestHash !== hash) {
        throw new HttpProblem(422, 'Idempotency key reused', 'This Idempotency-Key was used with a different request.');
      }
      for (const [name, value] of Object.entries(kept.headers)) ctx.set(name, value);
      ctx.set('Idempotent-Replayed', 'true');
      ctx.status = kept.statusCode;
      ctx.body = kept.body;
      return;
    }

    try {
      await next();
    } catch (err) {
      // Nothing was accepted: free the key so the client's retry runs again. The request's own
      // error is the answer even when the release fails too (PostgreSQL down): the key is then
      // taken as abandoned after ABANDONED_AFTER (src/db/idempotency-keys.ts).
      await releaseKey(db, actor, key).catch((releaseErr: unknown) =>
        log.warn({ err: (releaseErr as Error).message, key }, 'could not free an idempotency key'),
      );
      throw err;
    }
    const headers = Object.fromEntries(
      KEPT_HEADERS.flatMap((h) => (ctx.response.get(h) ? [[h, ctx.response.get(h)]] : [])),
    );
    // The work is done: failing to keep the answer must not turn it into an error for the client.
    await keepAnswer(db, actor, key, { statusCode: ctx.status, body: ctx.body, headers }).catch((err: unknown) =>
      log.warn({ err: (err as Error).message, key }, 'could not keep an idempotent answer'),
    );
  };
}

/**
 * What the middleware adds to every POST it guards, written into the document once: the
 * `Idempotency-Key` header, `Idempotent-Replayed` on a replayed answer, the 409 of a key still in
 * progress and the 422 of a key reused with another request. `skip` is the middleware's own.
 */
export function documentIdempotency(
  document: OpenApiDocument,
  { server, skip }: { server: string; skip: (ctx: { path: string }) => boolean },
): void {
  eachOperation(document, (operation, method, path) => {
    if (method !== 'post' || skip({ path: server + path.replace(/\{[^}]+\}/g, 'x') })) return;
    operation.parameters = [
      ...(operation.parameters ?? []),
      {
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        description:
          "A repeat with the same key and body replays the first accepted answer; nothing runs twice. Keys are the caller's own (per token subject) and kept 24 hours",
        schema: { type: 'string', maxLength: IDEMPOTENCY_KEY_MAX },
      },
    ];
    const { responses } = operation;
    for (const [status, response] of Object.entries(responses)) {
      if (status.startsWith('2')) {
        response.headers = {
          ...response.headers,
          'Idempotent-Replayed': {
            description: '`true` when this is the kept answer of an earlier request with the same Idempotency-Key',
            schema: { type: 'string', enum: ['true'] },
          },
        };
      }
    }
    amend(responses, '409', 'an Idempotency-Key whose first request is still in progress');
    const conflict = responses['409'];
    if (conflict) {
      conflict.headers = {
        ...conflict.headers,
        'Retry-After': {
          description: 'Seconds to wait before retrying, on an Idempotency-Key still in progress',
          schema: { type: 'integer' },
        },
      };
    }
    amend(responses, '422', 'an Idempotency-Key reused with another request');
  });
}

/** Adds `reason` to the answer `status` of an operation, or the answer itself when it has none. */
function amend(responses: OperationDoc['responses'], status: string, reason: string): void {
  const existing = responses[status];
  if (!existing) responses[status] = problemDoc(reason.charAt(0).toUpperCase() + reason.slice(1));
  else existing.description += `; or ${reason}`;
}
