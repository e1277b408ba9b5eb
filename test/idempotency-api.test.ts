import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startHarness, type Harness } from './support/harness';
import { expectInvalid, expectProblem } from './support/problems';
import { onboardActive } from './support/rotation';

/**
 * What the Idempotency-Key and X-Request-Id middlewares answer, on the real stack, against what the
 * committed admin OpenAPI document says of them: every guarded POST lists the key, the 422 of a
 * key reused and `Idempotent-Replayed`; every answer carries the request id the document names.
 */

interface DocOperation {
  parameters?: Array<{ name: string; in: string }>;
  responses: Record<string, { headers?: Record<string, unknown> }>;
}
const doc = JSON.parse(readFileSync(path.resolve(__dirname, '../openapi/admin.json'), 'utf8')) as {
  paths: Record<string, Record<string, DocOperation>>;
};
const operation = (p: string, method: string): DocOperation => {
  const op = doc.paths[p]?.[method];
  if (!op) throw new Error(`${method.toUpperCase()} ${p} is not in openapi/admin.json`);
  return op;
};

describe('Idempotency-Key and X-Request-Id as documented', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h?.stop());

  it('lists the key, its 409 and 422 on every POST but the entries stream, and on no other method', () => {
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const guarded = method === 'post' && !p.endsWith('/entries');
        const names = (op.parameters ?? []).filter((x) => x.in === 'header').map((x) => x.name);
        expect([`${method} ${p}`, names.includes('Idempotency-Key')]).toEqual([`${method} ${p}`, guarded]);
        if (guarded) expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['409', '422']));
      }
    }
  });

  let operatorId: string | undefined;
  // Two POSTs that run no workflow: a new prefix table, and a new rule under If-Match.
  const cases: Array<{
    name: string;
    path: string;
    send: (key: string, variant: number) => Promise<Response>;
  }> = [
    {
      name: 'POST /prefix-tables',
      path: '/prefix-tables',
      send: (key, variant) =>
        h.api('/prefix-tables', {
          method: 'POST',
          headers: { 'Idempotency-Key': key },
          json: { name: `idempotent ${key} ${variant}` },
        }),
    },
    {
      name: 'POST /operators/{id}/routing-rules',
      path: '/operators/{id}/routing-rules',
      send: async (key, variant) => {
        const id = operatorId ?? (operatorId = (await onboardActive(h)).id);
        return h.api(`/operators/${id}/routing-rules`, {
          method: 'POST',
          headers: { 'Idempotency-Key': key, 'If-Match': '*' },
          json: { prefixes: ['2547'], priority: variant, weight: 100, costPerSegment: '0.0125', currency: 'EUR' },
        });
      },
    },
  ];

  it.each(cases.map((c) => [c.name, c] as const))(
    '%s: a repeat replays the first answer; the key with another body is the documented 422',
    async (_name, c) => {
      const op = operation(c.path, 'post');
      const key = randomUUID();
      const first = await c.send(key, 1);
      expect(first.status).toBe(201);
      const firstBody: unknown = await first.json();
      expect(first.headers.get('idempotent-replayed')).toBeNull();

      const again = await c.send(key, 1);
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(op.responses['201']?.headers).toHaveProperty('Idempotent-Replayed');
      expect(again.headers.get('location')).toBe(first.headers.get('location'));
      // Kept as jsonb: the same answer, its keys perhaps in another order.
      expect(await again.json()).toEqual(firstBody);

      const reused = await c.send(key, 2);
      const { body } = await expectProblem(reused, 422);
      expect(body.detail).toContain('Idempotency-Key');
      expect(op.responses).toHaveProperty('422');
    },
  );

  it('refuses a key longer than the documented maxLength with a 400 naming it, and writes nothing', async () => {
    const param = (operation('/prefix-tables', 'post').parameters ?? []).find((x) => x.name === 'Idempotency-Key') as
      { schema?: { maxLength?: number } } | undefined;
    const max = param?.schema?.maxLength ?? 0;
    expect(max).toBeGreaterThan(0);
    const name = `too long key ${randomUUID()}`;
    const res = await h.api('/prefix-tables', {
      method: 'POST',
      headers: { 'Idempotency-Key': 'k'.repeat(max + 1) },
      json: { name },
    });
    await expectInvalid(res, ['Idempotency-Key']);
    // At the limit the key is taken, and the name is still free (a table name is unique): the
    // refused request wrote nothing.
    const ok = await h.api('/prefix-tables', {
      method: 'POST',
      headers: { 'Idempotency-Key': 'k'.repeat(max - 1) + randomUUID().slice(0, 1) },
      json: { name },
    });
    expect(ok.status).toBe(201);
  });

  it('echoes a sane X-Request-Id, replaces any other, on every answer the document says carries one', async () => {
    const op = operation('/prefix-tables/{id}', 'get');
    expect(op.parameters?.map((x) => x.name)).toContain('X-Request-Id');
    for (const status of ['200', '400', '404']) expect(op.responses[status]?.headers).toHaveProperty('X-Request-Id');

    const sane = `req-${randomUUID()}`;
    const found = await h.api(`/prefix-tables/${randomUUID()}`, { headers: { 'X-Request-Id': sane } });
    await expectProblem(found, 404);
    expect(found.headers.get('x-request-id')).toBe(sane);

    const invalid = await h.api('/prefix-tables/not-a-uuid', { headers: { 'X-Request-Id': 'has spaces in it' } });
    await expectProblem(invalid, 400);
    expect(invalid.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
