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
 * invalid requests to every read, and every operation without a token or without the admin
 * scope. Whatever is sent, the answer is never a 5xx, its status is one the document lists for
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
/** Schemas refer to '#/components/…' of the document: resolved in the schema added above. */
const anchored = (schema: JsonSchema): unknown =>
  JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"admin.json#/components/'));

/** A generated part of a request, and whether the document allows it. */
interface Tagged<T> {
  value: T;
  allowed: boolean;
}
const allowedBy = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<Tagged<T>> => a.map((value) => ({ value, allowed: true }));
const refusedBy = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<Tagged<T>> => a.map((value) => ({ value, allowed: false }));

/**
 * FUZZ_STRICT=1 also fails a request the document allows in every part that is answered 400.
 * Not yet in npm test: the document still cannot say some of the server's rules (a weekly
 * window's end after its start, each day once), and zod-to-openapi drops `minItems` under a
 * refinement. Fixed so far by it: the cursor format, empty PATCH bodies, If-Match, currencies,
 * time zones, the page size, a null TPS limit body.
 */
const STRICT = process.env.FUZZ_STRICT === '1';

// Fixed in npm test; FUZZ_SEED and FUZZ_RUNS explore further by hand.
const RUNS = Number(process.env.FUZZ_RUNS ?? 30);
const SEED = Number(process.env.FUZZ_SEED ?? 20261201);

describe('admin API against its OpenAPI document (property-based)', () => {
  let h: Harness;
  let ids: { operator: string; rule: string; table: string };

  beforeAll(async () => {
    h = await startHarness();
    const { id } = await onboardActive(h);
    const rules = (await (await h.api(`/operators/${id}/routing-rules`)).json()) as {
      routingRules: Array<{ id: string }>;
    };
    const table = (await (await h.api('/prefix-tables', { method: 'POST', json: { name: `fuzz ${id}` } })).json()) as {
      id: string;
    };
    ids = { operator: id, rule: rules.routingRules[0]?.id ?? id, table: table.id };
  });
  afterAll(async () => {
    await h.stop();
  });

  /**
   * The answer is documented for the operation, and its body matches the documented schema. A
   * request the document allows in every part is never a 400: the document would be looser than
   * the server.
   */
  async function expectDocumented(op: Operation, res: Response, sent: string, allowed = false): Promise<void> {
    const text = await res.text();
    const where = `${op.method} ${op.path} (${sent}) answered ${res.status}: ${text.slice(0, 300)}`;
    if (res.status >= 500) throw new Error(`a 5xx: ${where}`);
    const documented = op.responses[String(res.status)];
    if (!documented) throw new Error(`an undocumented status: ${where}`);
    if (STRICT && allowed && res.status === 400) throw new Error(`a request the document allows was refused: ${where}`);
    const type = (res.headers.get('content-type') ?? '').split(';')[0] ?? '';
    const content = documented.content?.[type];
    if (!documented.content || text === '') return;
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
  const pathValue = (name: string): fc.Arbitrary<Tagged<string>> => {
    const known = name === 'ruleId' ? ids.rule : /table/i.test(name) ? ids.table : ids.operator;
    return fc.oneof(
      allowedBy(fc.constant(known)),
      allowedBy(fc.constant(ids.table)),
      allowedBy(fc.uuid()),
      refusedBy(garbage.filter((g) => g.trim() !== '')),
    );
  };

  function requestOf(op: Operation): fc.Arbitrary<Tagged<string>> {
    const params = op.parameters ?? [];
    const pathParams = params.filter((p) => p.in === 'path');
    const queryParams = params.filter((p) => p.in === 'query');
    const required = queryParams.filter((p) => p.required).map((p) => p.name);
    return fc
      .record({
        path: fc.record(Object.fromEntries(pathParams.map((p) => [p.name, pathValue(p.name)]))),
        query: fc.record(
          Object.fromEntries(
            queryParams.map((p) => [p.name, fc.oneof(allowedBy(valid(p.schema, resolve)), refusedBy(garbage))]),
          ),
          { requiredKeys: [] },
        ),
      })
      .map(({ path: values, query }) => {
        const filled = op.path.replace(/\{(\w+)\}/g, (_, name: string) =>
          encodeURIComponent(String((values[name] as Tagged<string> | undefined)?.value)),
        );
        const search = new URLSearchParams(
          Object.entries(query).map(([k, v]): [string, string] => [k, String((v as Tagged<unknown>).value)]),
        ).toString();
        const allowed =
          Object.values(values).every((v) => (v as Tagged<string>).allowed) &&
          Object.values(query).every((v) => (v as Tagged<unknown>).allowed) &&
          required.every((name) => name in query);
        return { value: `${filled}${search ? `?${search}` : ''}`, allowed };
      });
  }

  /** A body the schema allows, one with a field it does not know, or any JSON at all. */
  function bodyOf(op: Operation): fc.Arbitrary<Tagged<unknown>> {
    const schema = op.requestBody?.content['application/json']?.schema;
    if (!schema) return allowedBy(fc.constant(undefined));
    const allowed = valid(schema, resolve);
    return fc.oneof(
      { weight: 3, arbitrary: allowedBy(allowed) },
      {
        weight: 1,
        arbitrary: refusedBy(
          allowed.map((v) =>
            v && typeof v === 'object' && !Array.isArray(v) ? { ...v, unexpected: 1 } : 'not a body',
          ),
        ),
      },
      { weight: 1, arbitrary: refusedBy(fc.jsonValue({ maxDepth: 2 })) },
    );
  }

  /** If-Match as the document describes it (or none), or garbage. */
  const ifMatch = (op: Operation): fc.Arbitrary<Tagged<string | undefined>> => {
    const schema = op.parameters?.find((p) => p.name === 'If-Match')?.schema;
    if (!schema) return allowedBy(fc.constant(undefined));
    return fc.oneof(
      allowedBy(fc.constant(undefined)),
      allowedBy(fc.constant('*')),
      allowedBy(fc.integer({ min: 0, max: 5 }).map((n) => `"${n}"`)),
      allowedBy(valid(schema, resolve) as fc.Arbitrary<string>),
      refusedBy(garbage),
    );
  };

  const reads = operations.filter((op) => op.method === 'GET');
  /** Writes that start no workflow: onboarding, rotation and drains are tested on their own. */
  const writes = operations.filter(
    (op) =>
      op.method !== 'GET' &&
      !/^(POST \/operators|DELETE \/operators\/\{id\})$|drain|credentials/.test(`${op.method} ${op.path}`),
  );

  it.each(reads.map((op) => [`${op.method} ${op.path}`, op] as const))(
    '%s: generated requests get documented answers',
    async (_name, op) => {
      await fc.assert(
        fc.asyncProperty(requestOf(op), async (url) => {
          const res = await h.api(url.value);
          await expectDocumented(op, res, url.value, url.allowed);
        }),
        { numRuns: RUNS, seed: SEED },
      );
    },
  );

  it.each(writes.map((op) => [`${op.method} ${op.path}`, op] as const))(
    '%s: generated writes get documented answers',
    async (_name, op) => {
      await fc.assert(
        fc.asyncProperty(requestOf(op), bodyOf(op), ifMatch(op), async (url, body, tag) => {
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (tag.value !== undefined) headers['If-Match'] = tag.value;
          const res = await h.api(url.value, {
            method: op.method,
            headers,
            body: body.value === undefined ? undefined : JSON.stringify(body.value),
          });
          const sent = `${url.value} If-Match ${tag.value} ${JSON.stringify(body.value)?.slice(0, 200)}`;
          await expectDocumented(op, res, sent, url.allowed && body.allowed && tag.allowed);
        }),
        { numRuns: RUNS, seed: SEED },
      );
    },
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
