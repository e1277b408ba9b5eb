import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { preconditionRequired, validationFailed, type ExpectedVersion } from '../../services/shared/errors';

extendZodWithOpenApi(z);

/** What every admin and internal route shares: the operator id, versions as ETags, cursors. */

// Lower-cased: the id also names Vault paths, workflow ids and Redis keys, which are case-sensitive.
export const OperatorIdParams = z.object({ id: z.uuid().transform((id) => id.toLowerCase()) });

/**
 * A display name as stored: not trimmed for the caller, so the document's pattern says exactly
 * what is taken.
 */
export const DisplayName = z
  .string()
  .max(200)
  .regex(/^\S(?:[\s\S]*\S)?$/, 'a name, without leading or trailing spaces');

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

/** One entity-tag of a list (RFC 9110 8.8.3): optional W/, then a quoted opaque tag, then a comma or the end. */
const ENTITY_TAG = /^[ \t]*(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"[ \t]*(?:,|$)/;

/**
 * The headers `parseIfMatch` takes, as one pattern for the OpenAPI document: empty (as if
 * absent), `*`, or a comma list with at least one entity-tag (empty elements allowed).
 */
const TAG = '[ \\t]*(?:W/)?"[\\x21\\x23-\\x7e\\x80-\\xff]*"[ \\t]*';
export const IF_MATCH_PATTERN = new RegExp(
  `^[ \\t]*$|^[ \\t]*\\*[ \\t]*$|^(?:[ \\t]*,)*${TAG}(?:,(?:${TAG}|[ \\t]*))*$`,
);

/**
 * If-Match per RFC 9110 13.1.1: `*`, or a list of entity-tags compared strongly, so a weak tag
 * never matches and a tag that is no version of ours (`"v1"`) matches nothing (a 412 later,
 * not a 400). Undefined when absent; a header that is neither is a 400 naming it.
 */
export function parseIfMatch(header: string): ExpectedVersion | undefined {
  // HTTP's whitespace (OWS) only: String#trim would also drop NBSP, which the pattern refuses.
  const ows = (s: string) => s.replace(/^[ \t]+|[ \t]+$/g, '');
  if (!ows(header)) return undefined;
  if (ows(header) === '*') return 'any';
  const versions: number[] = [];
  let rest = header;
  let tags = 0;
  while (ows(rest)) {
    // Empty list elements (", ,") are allowed and ignored (RFC 9110 5.6.1).
    const empty = /^[ \t]*,/.exec(rest);
    if (empty) {
      rest = rest.slice(empty[0].length);
      continue;
    }
    const tag = ENTITY_TAG.exec(rest);
    if (!tag)
      throw validationFailed([{ field: 'If-Match', message: '* or a list of ETags such as "3", as GET returned' }]);
    tags++;
    const value = tag[2] ?? '';
    if (!tag[1] && /^\d{1,15}$/.test(value)) versions.push(Number(value));
    rest = rest.slice(tag[0].length);
  }
  if (tags === 0)
    throw validationFailed([{ field: 'If-Match', message: '* or a list of ETags such as "3", as GET returned' }]);
  return { versions };
}

/**
 * Whether If-None-Match (RFC 9110 13.1.2) names `etag`: `*`, or one tag of its list compared
 * weakly (W/ ignored). Anything else names nothing, and the answer is sent whole. Not Koa's
 * `ctx.fresh`: it never answers 304 to `Cache-Control: no-cache`, which fetch() adds to every
 * conditional request, so a consumer reloading a table with fetch would always get it whole.
 */
export function namesCurrentEtag(header: string, etag: string): boolean {
  return header.split(',').some((tag) => {
    const t = tag.replace(/^[ \t]+|[ \t]+$/g, '');
    return t === '*' || t.replace(/^W\//, '') === etag;
  });
}

/** For writes that must name the version they change: `*` (any) or ETags; absent is 428. */
export function requiredIfMatch(header: string): ExpectedVersion {
  const expected = parseIfMatch(header);
  if (expected === undefined) throw preconditionRequired();
  return expected;
}

/**
 * A page cursor: the last row's creation time (epoch milliseconds) and id, `<ms>.<uuid>`. Every
 * string of this form is a position in the order, so the documented pattern is exactly what
 * the server accepts (an opaque base64 blob would let through strings it must refuse).
 */
export const CURSOR_PATTERN = /^[0-9]{1,13}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const Cursor = z.string().regex(CURSOR_PATTERN, 'a nextCursor this API returned').openapi({
  description: 'The nextCursor of the previous page',
  example: '1764633600000.8cf9acab-130c-4145-9c64-b29e62fc2041',
});

export function encodeCursor(after: { createdAt: string; id: string }): string {
  return `${Date.parse(after.createdAt)}.${after.id}`;
}

/** A cursor that matched CURSOR_PATTERN (the query schema checks it first). */
export function decodeCursor(cursor: string): { createdAt: string; id: string } {
  const [ms = '0', id = ''] = cursor.split('.');
  return { createdAt: new Date(Number(ms)).toISOString(), id };
}

/**
 * An RFC 3339 instant as zod's own datetime check takes it (a real calendar date, upper-case T
 * and Z, offsets hh:mm, no leap second), to `fractionDigits` decimals of a second at most: one
 * regular expression, so that the document's pattern is exactly what the server takes.
 */
export function instantPattern(fractionDigits?: number): RegExp {
  const { source } = z.core.regexes.datetime({ offset: true });
  const fraction = '(?:\\.\\d+)?';
  if (!source.includes(fraction)) throw new Error("zod's datetime expression changed: review instantPattern");
  return new RegExp(
    fractionDigits === undefined ? source : source.replace(fraction, `(?:\\.\\d{1,${fractionDigits}})?`),
  );
}

export { z };
