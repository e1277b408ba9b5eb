import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import { adminToken, startHarness, type Harness } from './support/harness';
import { garbage, resolver, valid, type JsonSchema } from './support/openapi-arbitraries';
import { onboardActive } from './support/rotation';

/**
 * A property-based test driven by the committed admin OpenAPI document alone: generated valid and
 * invalid requests to every operation (workflow starts included), and every operation without a
 * token or without the admin scope. Whatever is sent, the answer is never a 5xx, its status is one the document lists for
 * that operation, and its body matches the schema documented for that status. Seeded: the same
 * requests on every run, in bounded time (FUZZ_SEED, FUZZ_RUNS to explore further).
 */

interface Operation {
  method: string;
  path: string;
  requestBody?: { content: Record<string, { schema: JsonSchema }> };
  parameters?: Array<{ name: string; in: 'path' | 'query' | 'header'; required?: boolean; schema: JsonSchema }>;
  responses: Record<string, { content?: Record<string, { schema: JsonSchema }> }>;
}

const doc = JSON.parse(readFileSync(path.resolve(__dirname, '../openapi/admin.json'), 'utf8')) as {
  paths: Record<string, Record<string, Omit<Operation, 'method' | 'path'>>>;
  components: { schemas: Record<string, JsonSchema> };
};
const operations: Operation[] = Object.entries(doc.paths).flatMap(([p, item]) =>
  Object.entries(item).map(([method, op]) => ({ ...op, method: method.toUpperCase(), path: p })),
);
const resolve = resolver(doc.components.schemas);

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ $id: 'admin.json', components: doc.components });
/** Parameters come as text: the document's integer `limit` is "20" on the wire. */
const paramAjv = new Ajv2020({ strict: false, coerceTypes: true });
addFormats(paramAjv);
paramAjv.addSchema({ $id: 'admin.json', components: doc.components });
/** Schemas refer to '#/components/…' of the document: resolved in the schema added above. */
const anchored = (schema: JsonSchema): unknown =>
  JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"admin.json#/components/'));

/** Whether the document allows a body (Ajv, against the operation's request schema). */
function bodyAllowed(op: Operation, body: unknown): boolean {
  const schema = op.requestBody?.content['application/json']?.schema;
  if (!schema) return body === undefined;
  return body !== undefined && ajv.validate(anchored(schema) as object, body);
}

/** Whether the document allows a parameter's text (wrapped: Ajv coerces only inside an object). */
function paramAllowed(schema: JsonSchema, text: string): boolean {
  const wrapper = { type: 'object', properties: { value: anchored(schema) }, required: ['value'] };
  return paramAjv.validate(wrapper, { value: text }) as boolean;
}

/** A generated part of a request, and whether the document allows it. */
interface Tagged<T> {
  value: T;
  allowed: boolean;
}

/** Names of values never to print: a generated password is a password to whoever reads test output. */
const SECRET_NAME = /password|secret|token|authorization/i;

/** A copy of a JSON value with every secret-named field masked, at any depth. */
function masked(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(masked);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, SECRET_NAME.test(k) ? '<masked>' : masked(v)]));
}

/** A value as JSON, secret-named fields masked: what a failure message shows of a generated part. */
const shown = (value: unknown): string | undefined => JSON.stringify(masked(value));

/** A URL with its secret-named query parameters masked. */
function maskedUrl(url: string): string {
  const at = url.indexOf('?');
  if (at < 0) return url;
  const query = new URLSearchParams(url.slice(at + 1));
  for (const name of new Set(query.keys())) if (SECRET_NAME.test(name)) query.set(name, '<masked>');
  return `${url.slice(0, at)}?${query.toString()}`;
}

/** An answer's body as text, secret-named fields masked when it is JSON. */
function maskedText(text: string): string {
  try {
    return JSON.stringify(masked(JSON.parse(text)));
  } catch {
    return text;
  }
}

/**
 * A tagged part that fast-check prints masked: a failing property's counterexample (and, when
 * verbose, every value tried) goes into the error it throws.
 */
function tagged<T>(value: T, allowed: boolean, show: (value: T) => unknown = masked): Tagged<T> {
  return Object.assign(
    { value, allowed },
    { [fc.toStringMethod]: () => fc.stringify({ value: show(value), allowed }) },
  );
}

// Fixed in npm test; FUZZ_SEED and FUZZ_RUNS explore further by hand.
const RUNS = Number(process.env.FUZZ_RUNS ?? 30);
const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const WORKFLOW_RUNS = Math.max(5, Math.round(RUNS / 3));
/** FUZZ_REPORT=1 prints how often each operation gave each status: to see what the seed reaches. */
const statuses = new Map<string, Map<number, number>>();

describe('admin API against its OpenAPI document (property-based)', () => {
  let h: Harness;
  /** `workflowOperator` is the one drained and rotated by the generated workflow starts. */
  let ids: { operator: string; rule: string; table: string; workflowOperator: string };

  beforeAll(async () => {
    h = await startHarness();
    const { id } = await onboardActive(h);
    const rules = (await (await h.api(`/operators/${id}/routing-rules`)).json()) as {
      routingRules: Array<{ id: string }>;
    };
    const table = (await (await h.api('/prefix-tables', { method: 'POST', json: { name: `fuzz ${id}` } })).json()) as {
      id: string;
    };
    const workflowOperator = (await onboardActive(h)).id;
    ids = { operator: id, rule: rules.routingRules[0]?.id ?? id, table: table.id, workflowOperator };
  });
  afterAll(async () => {
    if (process.env.FUZZ_REPORT === '1') {
      const lines = [...statuses].map(([op, seen]) => `${op}: ${[...seen].map(([st, n]) => `${st}×${n}`).join(' ')}`);
      console.log(lines.join('\n'));
    }
    await h.stop();
  });

  /**
   * The answer is documented for the operation, and its body matches the documented schema. A
   * request the document allows in every part is never a 400 (the document would be looser than
   * the server), and one it refuses is never a 2xx (the document would be stricter).
   */
  async function expectDocumented(op: Operation, res: Response, sent: string, allowed?: boolean): Promise<void> {
    const text = await res.text();
    const where = `${op.method} ${op.path} (${sent}) answered ${res.status}: ${maskedText(text).slice(0, 300)}`;
    const seen = statuses.get(`${op.method} ${op.path}`) ?? new Map<number, number>();
    statuses.set(`${op.method} ${op.path}`, seen.set(res.status, (seen.get(res.status) ?? 0) + 1));
    if (res.status >= 500) throw new Error(`a 5xx: ${where}`);
    const documented = op.responses[String(res.status)];
    if (!documented) throw new Error(`an undocumented status: ${where}`);
    if (allowed === true && res.status === 400) throw new Error(`a request the document allows was refused: ${where}`);
    if (allowed === false && res.status < 300) throw new Error(`a request the document refuses was taken: ${where}`);
    const type = (res.headers.get('content-type') ?? '').split(';')[0] ?? '';
    const content = documented.content?.[type];
    if (!documented.content) return;
    // A documented body must be there: only a HEAD answer carries none.
    if (text === '' && op.method === 'HEAD') return;
    if (!content) throw new Error(`an undocumented content type ${type}: ${where}`);
    if (!type.endsWith('json')) return;
    const validate = ajv.compile(anchored(content.schema) as object);
    if (!validate(JSON.parse(text)))
      throw new Error(`a body off its schema (${ajv.errorsText(validate.errors)}): ${where}`);
  }

  /**
   * A path parameter: a live id of the right kind, an unknown UUID, or garbage. Never empty:
   * `/operators/` is another path (the list), not `/operators/{id}` with an empty id.
   */
  const pathValue = (name: string, operator: string): fc.Arbitrary<string> => {
    const known = name === 'ruleId' ? ids.rule : /table/i.test(name) ? ids.table : operator;
    return fc.oneof(
      fc.constant(known),
      fc.constant(ids.table),
      fc.uuid(),
      garbage.filter((g) => g.trim() !== ''),
    );
  };

  /** A URL with generated path and query parameters, and whether the document allows them all. */
  function requestOf(op: Operation, operator = ids.operator): fc.Arbitrary<Tagged<string>> {
    const params = op.parameters ?? [];
    const pathParams = params.filter((p) => p.in === 'path');
    const queryParams = params.filter((p) => p.in === 'query');
    return fc
      .record({
        path: fc.record(Object.fromEntries(pathParams.map((p) => [p.name, pathValue(p.name, operator)]))),
        query: fc.record(
          Object.fromEntries(queryParams.map((p) => [p.name, fc.oneof(valid(p.schema, resolve).map(String), garbage)])),
          { requiredKeys: [] },
        ),
      })
      .map(({ path: values, query }) => {
        const filled = op.path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(String(values[name])));
        const search = new URLSearchParams(
          Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]),
        ).toString();
        const allowed =
          pathParams.every((p) => paramAllowed(p.schema, String(values[p.name]))) &&
          queryParams.every((p) => (p.name in query ? paramAllowed(p.schema, String(query[p.name])) : !p.required));
        return tagged(`${filled}${search ? `?${search}` : ''}`, allowed, maskedUrl);
      });
  }

  /** A body the schema allows, one with a field it does not know, or any JSON at all; Ajv judges. */
  function bodyOf(op: Operation): fc.Arbitrary<Tagged<unknown>> {
    const schema = op.requestBody?.content['application/json']?.schema;
    const body: fc.Arbitrary<unknown> = !schema
      ? fc.constant(undefined)
      : fc.oneof(
          { weight: 3, arbitrary: valid(schema, resolve) },
          {
            weight: 1,
            arbitrary: valid(schema, resolve).map((v) =>
              v && typeof v === 'object' && !Array.isArray(v) ? { ...v, unexpected: 1 } : 'not a body',
            ),
          },
          { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
        );
    return body.map((value) => tagged(value, bodyAllowed(op, value)));
  }

  /** A header as the document describes it (If-Match: also `*` and versions), absent, or garbage. */
  const headerValue = (p: NonNullable<Operation['parameters']>[number]): fc.Arbitrary<string | undefined> => {
    const described = valid(p.schema, resolve).map(String);
    if (p.name !== 'If-Match') return fc.oneof(fc.constant(undefined), described, garbage);
    return fc.oneof(
      fc.constant(undefined),
      fc.constant('*'),
      fc.integer({ min: 0, max: 5 }).map((n) => `"${n}"`),
      described,
      garbage,
    );
  };

  /** The operation's header parameters, generated, and whether the document allows them all. */
  function headersOf(op: Operation): fc.Arbitrary<Tagged<Record<string, string>>> {
    const params = (op.parameters ?? []).filter((p) => p.in === 'header');
    return fc.tuple(...params.map(headerValue)).map((values) => {
      const value: Record<string, string> = {};
      let allowed = true;
      params.forEach((p, i) => {
        const v = values[i];
        if (v === undefined) allowed &&= !p.required;
        else {
          value[p.name] = v;
          // Judged as sent: fetch strips the whitespace around a header value.
          allowed &&= paramAllowed(p.schema, v.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, ''));
        }
      });
      return tagged(value, allowed);
    });
  }

  const reads = operations.filter((op) => op.method === 'GET');
  const startsWorkflow = (op: Operation) =>
    /^(POST \/operators|DELETE \/operators\/\{id\})$|drain|credentials/.test(`${op.method} ${op.path}`);
  const writes = operations.filter((op) => op.method !== 'GET' && !startsWorkflow(op));
  const workflowStarts = operations.filter((op) => op.method !== 'GET' && startsWorkflow(op));

  it.each(reads.map((op) => [`${op.method} ${op.path}`, op] as const))(
    '%s: generated requests get documented answers',
    async (_name, op) => {
      await fc.assert(
        fc.asyncProperty(requestOf(op), async (url) => {
          const res = await h.api(url.value);
          await expectDocumented(op, res, maskedUrl(url.value), url.allowed);
        }),
        { numRuns: RUNS, seed: SEED },
      );
    },
  );

  /** A body compressed as `encoding` says, when it is one the document names; else as it is. */
  function encodedAs(header: string | undefined, json: string): string | Buffer {
    const encoding = header?.trim().toLowerCase();
    if (encoding === 'gzip') return gzipSync(json);
    if (encoding === 'deflate') return deflateSync(json);
    if (encoding === 'br') return brotliCompressSync(json);
    return json;
  }

  /** Generated writes to `op`, on `operator` where a path names one. */
  async function fuzzWrites(op: Operation, runs: number, operator = ids.operator): Promise<void> {
    await fc.assert(
      fc.asyncProperty(requestOf(op, operator), bodyOf(op), headersOf(op), async (url, body, extra) => {
        const json = body.value === undefined ? undefined : JSON.stringify(body.value);
        const res = await h.api(url.value, {
          method: op.method,
          headers: { 'content-type': 'application/json', ...extra.value },
          // Compressed as its documented Content-Encoding says (the import's bodies).
          body: json === undefined ? undefined : encodedAs(extra.value['Content-Encoding'], json),
        });
        const sent = `${maskedUrl(url.value)} ${shown(extra.value)} ${shown(body.value)?.slice(0, 200)}`;
        await expectDocumented(op, res, sent, url.allowed && body.allowed && extra.allowed);
      }),
      { numRuns: runs, seed: SEED },
    );
  }

  it.each(writes.map((op) => [`${op.method} ${op.path}`, op] as const))(
    '%s: generated writes get documented answers',
    async (_name, op) => fuzzWrites(op, RUNS),
  );

  /**
   * Onboarding, drains and rotations start workflows on the harness's worker: fewer runs, and on
   * an operator of their own, so a drain started here changes nothing the other properties see.
   */
  it.each(workflowStarts.map((op) => [`${op.method} ${op.path}`, op] as const))(
    '%s: generated workflow starts get documented answers',
    async (_name, op) => fuzzWrites(op, WORKFLOW_RUNS, ids.workflowOperator),
  );

  it.each(operations.map((op) => [`${op.method} ${op.path}`, op] as const))(
    '%s: 401 without a token, 403 without the admin scope',
    async (_name, op) => {
      const url = op.path.replace(/\{(\w+)\}/g, ids.operator);
      const init = {
        method: op.method,
        headers: { 'content-type': 'application/json' },
        body: op.method === 'GET' || op.method === 'DELETE' ? undefined : '{}',
      };
      const anonymous = await fetch(`${h.baseUrl}${url}`, init);
      expect(anonymous.status).toBe(401);
      await expectDocumented(op, anonymous, 'no token');
      const reader = await fetch(`${h.baseUrl}${url}`, {
        ...init,
        headers: { ...init.headers, authorization: `Bearer ${adminToken({ scope: 'read' })}` },
      });
      expect(reader.status).toBe(403);
      await expectDocumented(op, reader, 'scope read');
    },
  );
});
