import { Readable } from 'node:stream';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Config } from '../platform/config';
import type { PrefixTableService } from '../services/prefix-tables';
import { ENTRY_TYPES, readPrefixes } from './prefix-tables-body';
import { BODY_ENCODINGS_TEXT } from './shared/json-body';
import type { AuthState } from './shared/auth';
import type { InternalState } from './shared/internal-tls';
import {
  Cursor,
  decodeCursor,
  DisplayName,
  etagOf,
  namesCurrentEtag,
  pageLimit,
  requiredIfMatch,
  sendVersioned,
  toPage,
  z,
} from './shared/http';
import {
  commonErrors,
  ifMatch,
  json,
  jsonBodyErrors,
  location,
  problem,
  versionEtag,
  type AdminDoc,
} from './shared/openapi';
import { parse } from './shared/validate';

/** /prefix-tables: destination prefix tables and their entries (CSV or JSON, a million in one request). */

const TableParams = z.object({ id: z.uuid().transform((id) => id.toLowerCase()) });

const PrefixTable = z
  .object({
    id: z.uuid(),
    name: z.string(),
    description: z.string(),
    version: z.number().int().openapi({ description: 'Bumped by every change; the ETag of table writes' }),
    entryCount: z.number().int(),
    contentHash: z.string().openapi({ description: 'SHA-256 (hex) of the sorted prefixes joined by "\\n"' }),
    createdAt: z.iso.datetime(),
    createdBy: z.string(),
    updatedAt: z.iso.datetime(),
    updatedBy: z.string(),
  })
  .openapi('PrefixTable');

const name = DisplayName;
const description = z.string().max(2000);

const CreatePrefixTableRequest = z
  .strictObject({ name, description: description.default('') })
  .openapi('CreatePrefixTableRequest');

const PatchPrefixTableRequest = z
  .strictObject({ name: name.optional(), description: description.optional() })
  .refine((p) => p.name !== undefined || p.description !== undefined, 'give at least one field to change')
  .openapi('PatchPrefixTableRequest', { minProperties: 1 });

const ListQuery = z.strictObject({
  // The document states the default PAGE_SIZE_MAX; a deployment that raises it accepts more.
  limit: z.coerce.number().int().min(1).openapi({ maximum: 100 }).optional(),
  cursor: Cursor.optional(),
});

const PrefixTablePage = z
  .object({ items: z.array(PrefixTable), nextCursor: z.string().nullable() })
  .openapi('PrefixTablePage');

const EntriesWritten = z
  .object({
    table: PrefixTable,
    received: z.number().int().openapi({ description: 'Prefixes in the body' }),
    added: z.number().int(),
    removed: z.number().int(),
    unchanged: z.number().int().openapi({ description: 'Distinct prefixes of the body already in the table' }),
    operators: z
      .array(z.object({ operatorId: z.uuid(), version: z.number().int() }))
      .openapi({ description: 'Operators told by operator.config.prefix_table_updated, at their new versions' }),
  })
  .openapi('EntriesWritten');

const PrefixTableEntries = z
  .object({
    prefixTableId: z.uuid(),
    version: z.number().int(),
    contentHash: z.string().openapi({ description: 'SHA-256 (hex) of the sorted prefixes joined by "\\n"' }),
    prefixes: z.array(z.string()),
  })
  .openapi('PrefixTableEntries');

const PrefixesJson = z.strictObject({ prefixes: z.array(z.string().regex(/^\+?[0-9]{1,15}$/)) }).openapi('Prefixes');

export function createPrefixTablesRouter(tables: PrefixTableService, config: Config): Router<AuthState> {
  const router = new Router<AuthState>();
  const url = (id: string) => `/v1/admin/prefix-tables/${id}`;

  router.post('/prefix-tables', async (ctx) => {
    const body = parse(CreatePrefixTableRequest, ctx.request.body, 'body');
    const table = await tables.create(body, ctx.state.actor);
    ctx.status = 201;
    ctx.set('Location', url(table.id));
    sendVersioned(ctx, table);
  });

  router.get('/prefix-tables', async (ctx) => {
    const q = parse(ListQuery, ctx.query, 'query');
    const limit = pageLimit(q.limit, config.http.pageSizeMax);
    const rows = await tables.list({ after: q.cursor ? decodeCursor(q.cursor) : undefined, limit: limit + 1 });
    ctx.body = toPage(rows, limit);
  });

  router.get('/prefix-tables/:id', async (ctx) => {
    const { id } = parse(TableParams, ctx.params, 'path');
    const table = await tables.get(id);
    sendVersioned(ctx, table);
  });

  router.patch('/prefix-tables/:id', async (ctx) => {
    const { id } = parse(TableParams, ctx.params, 'path');
    const patch = parse(PatchPrefixTableRequest, ctx.request.body, 'body');
    const table = await tables.update(id, patch, requiredIfMatch(ctx.get('If-Match')), ctx.state.actor);
    sendVersioned(ctx, table);
  });

  router.delete('/prefix-tables/:id', async (ctx) => {
    const { id } = parse(TableParams, ctx.params, 'path');
    await tables.remove(id, requiredIfMatch(ctx.get('If-Match')), ctx.state.actor);
    ctx.status = 204;
  });

  const writeEntries = (mode: 'replace' | 'add') => async (ctx: Context & { state: AuthState }) => {
    const { id } = parse(TableParams, ctx.params, 'path');
    const expected = requiredIfMatch(ctx.get('If-Match'));
    const prefixes = readPrefixes(ctx.req, config.http.prefixImportMaxBytes);
    const written = await tables.writeEntries(id, prefixes, mode, expected, ctx.state.actor);
    ctx.set('ETag', etagOf(written.table.version));
    ctx.body = written;
  };
  router.put('/prefix-tables/:id/entries', writeEntries('replace'));
  router.post('/prefix-tables/:id/entries', writeEntries('add'));

  router.get('/prefix-tables/:id/entries', sendEntries(tables));

  return router;
}

/** GET /v1/internal/prefix-tables/{id}/entries: one table, for a consumer that reloads it. */
export function createInternalPrefixTablesRouter(tables: PrefixTableService): Router<InternalState> {
  const router = new Router<InternalState>();
  router.get('/prefix-tables/:id/entries', async (ctx) => {
    // A consumer that holds the table names its version: 304 when it is still the current one
    // (a routing engine reads a table again for every operator that takes it up).
    const held = ctx.get('If-None-Match');
    if (held) {
      const { id } = parse(TableParams, ctx.params, 'path');
      const etag = etagOf((await tables.get(id)).version);
      if (namesCurrentEtag(held, etag)) {
        ctx.set('ETag', etag);
        ctx.vary('Accept');
        ctx.status = 304;
        return;
      }
    }
    await sendEntries(tables)(ctx);
  });
  return router;
}

const tableEtag = versionEtag('table');

/** A table's entries as CSV or JSON by Accept, streamed from one snapshot; ETag is the table version. */
function sendEntries(tables: PrefixTableService) {
  return async (ctx: Context) => {
    const { id } = parse(TableParams, ctx.params, 'path');
    const asCsv = ctx.accepts('application/json', 'text/csv') === 'text/csv';
    const { table, pages, close } = await tables.entries(id);
    // Ends the snapshot however the answer ends: read to the end, a HEAD, a client gone.
    ctx.res.once('close', () => void close());
    ctx.set('ETag', etagOf(table.version));
    // One ETag for both forms: a cache keys them apart by Accept.
    ctx.vary('Accept');
    ctx.type = asCsv ? 'text/csv' : 'application/json';
    ctx.body = Readable.from(asCsv ? csvLines(pages) : jsonChunks(table, pages));
  };
}

async function* csvLines(pages: AsyncIterable<string[]>): AsyncGenerator<string> {
  yield 'prefix\n';
  for await (const page of pages) yield `${page.join('\n')}\n`;
}

/** `{"prefixTableId", "version", "contentHash", "prefixes": [...]}`, a page at a time. */
async function* jsonChunks(
  table: { id: string; version: number; contentHash: string },
  pages: AsyncIterable<string[]>,
): AsyncGenerator<string> {
  const head = { prefixTableId: table.id, version: table.version, contentHash: table.contentHash };
  yield `${JSON.stringify(head).slice(0, -1)},"prefixes":[`;
  let first = true;
  for await (const page of pages) {
    yield `${first ? '' : ','}${page.map((p) => `"${p}"`).join(',')}`;
    first = false;
  }
  yield ']}';
}

export function documentPrefixTables({ registry, security }: AdminDoc): void {
  const table = { ...json('The prefix table', PrefixTable), headers: tableEtag };
  const writeErrors = {
    404: problem('No such prefix table'),
    412: problem('If-Match does not match the table version'),
    428: problem('If-Match is missing'),
  };
  const entriesBody = {
    content: {
      'text/csv': {
        schema: z.string().openapi({
          description:
            'One prefix a line (1–15 digits, an optional leading +); optional header line `prefix`; LF or CRLF; a UTF-8 BOM is dropped',
          example: 'prefix\n2547\n+2541\n',
        }),
      },
      'application/json': { schema: PrefixesJson },
    },
  };
  registry.registerPath({
    method: 'post',
    path: '/prefix-tables',
    summary: 'Create a prefix table (empty, version 1)',
    security,
    request: { body: { content: { 'application/json': { schema: CreatePrefixTableRequest } } } },
    responses: {
      201: { ...json('The new table', PrefixTable), headers: { ...tableEtag, ...location } },
      ...commonErrors,
      ...jsonBodyErrors,
      409: problem('A live table has that name'),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/prefix-tables',
    summary: 'List prefix tables',
    security,
    request: { query: ListQuery },
    responses: { 200: json('A page of tables', PrefixTablePage), ...commonErrors },
  });
  registry.registerPath({
    method: 'get',
    path: '/prefix-tables/{id}',
    summary: 'Get a prefix table',
    security,
    request: { params: TableParams },
    responses: { 200: table, ...commonErrors, 404: problem('No such prefix table') },
  });
  registry.registerPath({
    method: 'patch',
    path: '/prefix-tables/{id}',
    summary: "Change a table's name or description",
    description: 'Bumps the table version; no event (routing does not change).',
    security,
    request: {
      params: TableParams,
      headers: ifMatch,
      body: { content: { 'application/json': { schema: PatchPrefixTableRequest } } },
    },
    responses: {
      200: table,
      ...commonErrors,
      ...writeErrors,
      ...jsonBodyErrors,
      409: problem('A live table has that name'),
    },
  });
  registry.registerPath({
    method: 'delete',
    path: '/prefix-tables/{id}',
    summary: 'Delete a prefix table (soft delete)',
    security,
    request: { params: TableParams, headers: ifMatch },
    responses: {
      204: { description: 'Deleted' },
      ...commonErrors,
      ...writeErrors,
      409: problem('Live routing rules use the table; `rules` names them ({ruleId, operatorId})'),
    },
  });
  const entriesWritten = { ...json('What changed', EntriesWritten), headers: tableEtag };
  const entriesErrors = {
    ...writeErrors,
    400: problem(
      'A bad line: `errors` names it ("line 12" for CSV, "prefixes[11]" for JSON) with its value; a bad table id (`errors` names it); or, with no `errors`, a JSON body that does not parse or is not `{"prefixes": [...]}`, a body that is not what its Content-Encoding says, or one cut short; nothing is written',
    ),
    413: problem('The body, decoded, is larger than PREFIX_IMPORT_MAX_BYTES; nothing is written'),
    415: problem(
      `The body is not ${ENTRY_TYPES.join(' or ')}, or comes in a Content-Encoding other than ${BODY_ENCODINGS_TEXT}; nothing is written`,
    ),
  };
  const entriesDescription = `Streamed into PostgreSQL; one transaction with the table's new version, count and hash and one operator.config.prefix_table_updated for each announced live operator whose rules use the table (added and removed prefixes when at most 1000 changed, else \`replaced\`). Nothing changes (no new version, no event) when the body changes nothing. The body may come compressed (Content-Encoding ${BODY_ENCODINGS_TEXT}), its size limit counting what it decodes to.`;
  registry.registerPath({
    method: 'put',
    path: '/prefix-tables/{id}/entries',
    summary: "Replace a table's entries",
    description: `The body becomes the table's whole content. A prefix given twice is a 400 naming both lines (or JSON indexes); into a table with no entries yet, which an import fills directly, the 400 names the prefix under \`body\`. ${entriesDescription}`,
    security,
    request: { params: TableParams, headers: ifMatch, body: entriesBody },
    responses: { 200: entriesWritten, ...commonErrors, ...entriesErrors },
  });
  registry.registerPath({
    method: 'post',
    path: '/prefix-tables/{id}/entries',
    summary: 'Add entries to a table',
    description: `Prefixes already present count as unchanged, not as an error. ${entriesDescription}`,
    security,
    request: { params: TableParams, headers: ifMatch, body: entriesBody },
    responses: { 200: entriesWritten, ...commonErrors, ...entriesErrors },
  });
  registry.registerPath({
    method: 'get',
    path: '/prefix-tables/{id}/entries',
    summary: "Export a table's entries (CSV or JSON by Accept), streamed in prefix order",
    security,
    request: { params: TableParams },
    responses: {
      200: {
        description: 'The prefixes; ETag is the table version',
        headers: tableEtag,
        content: {
          'text/csv': { schema: z.string().openapi({ example: 'prefix\n2541\n2547\n' }) },
          'application/json': { schema: PrefixTableEntries },
        },
      },
      ...commonErrors,
      404: problem('No such prefix table'),
    },
  });
}

export function documentInternalEntries({ registry, security }: AdminDoc): void {
  registry.registerPath({
    method: 'get',
    path: '/prefix-tables/{id}/entries',
    summary: "One table's prefixes and the table version they are, for a consumer that reloads it",
    description:
      'CSV or JSON by Accept, streamed in prefix order from one snapshot; ETag is the table version. With If-None-Match naming the current version, 304 and no body.',
    security,
    request: {
      params: TableParams,
      headers: z.object({
        'If-None-Match': z.string().optional().openapi({
          description:
            'The version held, as its ETag ("3"), a list of ETags (W/ ones compared weakly) or *; 304 when one is the current version',
        }),
      }),
    },
    responses: {
      200: {
        description: 'The prefixes',
        headers: tableEtag,
        content: {
          'text/csv': { schema: z.string() },
          'application/json': { schema: PrefixTableEntries },
        },
      },
      304: { description: 'The version named in If-None-Match is the current one', headers: tableEtag },
      400: problem('Not a table id'),
      403: problem('The client certificate is not allowed'),
      404: problem('No such prefix table'),
      503: commonErrors[503],
    },
  });
}
