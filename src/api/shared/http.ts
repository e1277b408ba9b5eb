import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { preconditionRequired, validationFailed, type ExpectedVersion } from '../../services/shared/errors';

extendZodWithOpenApi(z);

/** What every admin and internal route shares: the operator id, versions as ETags, cursors. */

// Lower-cased: the id also names Vault paths, workflow ids and Redis keys, which are case-sensitive.
export const OperatorIdParams = z.object({ id: z.uuid().transform((id) => id.toLowerCase()) });

export const etagOf = (version: number) => `"${version}"`;

/** A versioned answer: its version is the ETag the next write names in If-Match. */
export function sendVersioned(
  ctx: { set(name: string, value: string): void; body: unknown },
  value: { version: number },
) {
  ctx.set('ETag', etagOf(value.version));
  ctx.body = value;
}

/** The page size a list asks for: `limit` up to PAGE_SIZE_MAX (400 beyond), 50 by default. */
export function pageLimit(limit: number | undefined, max: number): number {
  if (limit !== undefined && limit > max) throw validationFailed([{ field: 'limit', message: `at most ${max}` }]);
  return limit ?? Math.min(50, max);
}

/** A page from `limit + 1` rows: the extra row says there is a next page, whose cursor is the last row shown. */
export function toPage<T extends { createdAt: string; id: string }>(rows: T[], limit: number) {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
}

/** `If-Match: "7"` (or W/"7") → 7; `*` or absent → undefined. */
export function ifMatchVersion(header: string): number | undefined {
  if (!header || header.trim() === '*') return undefined;
  const m = /^(?:W\/)?"(\d+)"$/.exec(header.trim());
  if (!m) throw validationFailed([{ field: 'If-Match', message: 'an ETag such as "3", as GET returned' }]);
  return Number(m[1]);
}

/** For writes that must name the version they change: `*` (any) or a version; absent is 428. */
export function requiredIfMatch(header: string): ExpectedVersion {
  if (!header) throw preconditionRequired();
  return ifMatchVersion(header) ?? 'any';
}

export function encodeCursor(after: { createdAt: string; id: string }): string {
  return Buffer.from(JSON.stringify([after.createdAt, after.id])).toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: string; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown[];
    if (
      typeof createdAt === 'string' &&
      typeof id === 'string' &&
      !Number.isNaN(Date.parse(createdAt)) &&
      /^[0-9a-f-]{36}$/.test(id)
    ) {
      return { createdAt, id };
    }
  } catch {
    // falls through to the validation error
  }
  throw validationFailed([{ field: 'cursor', message: 'not a cursor this API returned' }]);
}

export { z };
