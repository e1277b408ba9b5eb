import { createHash, randomUUID } from 'node:crypto';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import type { EventEnvelope } from '../src/events/envelope';
import { useHarnessWithEvents } from './support/harness';
import { backendPid, waitUntilBlockedBy } from './support/pg-locks';
import { expectInvalid, expectProblem } from './support/problems';
import { onboardActive } from './support/rotation';

/** Prefix tables and their entries against the real stack: versions, imports, exports, fan-out. */

interface Table {
  id: string;
  name: string;
  version: number;
  entryCount: number;
  contentHash: string;
}
interface Written {
  table: Table;
  received: number;
  added: number;
  removed: number;
  unchanged: number;
  operators: Array<{ operatorId: string; version: number }>;
}

const hashOf = (prefixes: string[]) =>
  createHash('sha256')
    .update([...prefixes].sort().join('\n'))
    .digest('hex');

describe('prefix tables', () => {
  const { h, events } = useHarnessWithEvents();

  async function newTable(): Promise<Table> {
    const res = await h().api('/prefix-tables', { method: 'POST', json: { name: `table ${randomUUID()}` } });
    expect(res.status).toBe(201);
    expect(res.headers.get('etag')).toBe('"1"');
    return (await res.json()) as Table;
  }

  /** Adds a rule on the table to the operator through the API; the operator's version after it. */
  async function addRuleOn(tableId: string, operatorId: string): Promise<number> {
    const current = await h().api(`/operators/${operatorId}`);
    const rule = { prefixTableId: tableId, priority: 1, weight: 10, costPerSegment: '0.01', currency: 'EUR' };
    const res = await h().api(`/operators/${operatorId}/routing-rules`, {
      method: 'POST',
      json: rule,
      headers: { 'If-Match': current.headers.get('etag') ?? '' },
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { version: number }).version;
  }

  function writeEntries(table: Pick<Table, 'id' | 'version'>, method: 'PUT' | 'POST', body: string, type = 'text/csv') {
    return h().api(`/prefix-tables/${table.id}/entries`, {
      method,
      body,
      headers: { 'content-type': type, 'If-Match': `"${table.version}"` },
    });
  }

  /**
   * A PUT of CSV whose body starts with `first` and goes on until `finish` sends the rest (once:
   * a test calls it again in `finally`, so that a failure never leaves the request open);
   * returned once the import's transaction is copying that body (`into` the temporary table of a
   * staged import, or the entries of an empty table), with the pid of its backend: a COPY that
   * was not running before the request (test files beside this one import too).
   */
  async function importStillUploading(
    table: Pick<Table, 'id' | 'version'>,
    first: string,
    { into = 'prefix_import', ifMatch = `"${table.version}"` } = {},
  ) {
    const copying = async () =>
      (
        await h().resources.db.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1",
          [`COPY ${into} %`],
        )
      ).rows.map((r) => r.pid);
    const before = new Set(await copying());
    let body!: ReadableStreamDefaultController<Uint8Array>;
    let open = true;
    const finish = (rest = '') => {
      if (!open) return;
      open = false;
      if (rest) body.enqueue(Buffer.from(rest));
      body.close();
    };
    const stream = new ReadableStream<Uint8Array>({ start: (controller) => void (body = controller) });
    body.enqueue(Buffer.from(first));
    const put = h().api(`/prefix-tables/${table.id}/entries`, {
      method: 'PUT',
      body: stream,
      duplex: 'half',
      headers: { 'content-type': 'text/csv', 'If-Match': ifMatch },
    } as RequestInit);
    try {
      for (const until = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 10))) {
        const pid = (await copying()).find((p) => !before.has(p));
        if (pid !== undefined) return { finish, put, pid };
        if (Date.now() > until) throw new Error(`the import never started copying its body into ${into}`);
      }
    } catch (err) {
      finish();
      throw err;
    }
  }

  it('creates, reads, lists, renames under If-Match and deletes a table', async () => {
    const table = await newTable();
    expect(table).toMatchObject({ version: 1, entryCount: 0, contentHash: hashOf([]) });
    expect((await h().api(`/prefix-tables/${table.id}`)).status).toBe(200);

    const renamed = await h().api(`/prefix-tables/${table.id}`, {
      method: 'PATCH',
      json: { description: 'Kenya mobile' },
      headers: { 'If-Match': '"1"' },
    });
    expect(renamed.status).toBe(200);
    expect(await renamed.json()).toMatchObject({ version: 2, description: 'Kenya mobile' });
    await expectProblem(
      await h().api(`/prefix-tables/${table.id}`, {
        method: 'PATCH',
        json: { name: 'x' },
        headers: { 'If-Match': '"1"' },
      }),
      412,
    );
    await expectProblem(await h().api(`/prefix-tables/${table.id}`, { method: 'PATCH', json: { name: 'x' } }), 428);
    await expectProblem(await h().api('/prefix-tables', { method: 'POST', json: { name: table.name } }), 409);

    const listed: string[] = [];
    let cursor: string | null = null;
    do {
      const page = (await (await h().api(`/prefix-tables?limit=2${cursor ? `&cursor=${cursor}` : ''}`)).json()) as {
        items: Table[];
        nextCursor: string | null;
      };
      listed.push(...page.items.map((t) => t.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(listed).toContain(table.id);
    expect(new Set(listed).size).toBe(listed.length);

    const deleted = await h().api(`/prefix-tables/${table.id}`, { method: 'DELETE', headers: { 'If-Match': '"2"' } });
    expect(deleted.status).toBe(204);
    await expectProblem(await h().api(`/prefix-tables/${table.id}`), 404);
  });

  it('replaces entries from CSV (BOM, CRLF, header, +), adds with unchanged counted, and exports both ways', async () => {
    const table = await newTable();
    const put = await writeEntries(table, 'PUT', '\uFEFFprefix\r\n2547\r\n+2541\r\n');
    expect(put.status).toBe(200);
    const replaced = (await put.json()) as Written;
    expect(replaced).toMatchObject({ received: 2, added: 2, removed: 0, unchanged: 0 });
    expect(replaced.table).toMatchObject({ version: 2, entryCount: 2, contentHash: hashOf(['2541', '2547']) });
    expect(put.headers.get('etag')).toBe('"2"');

    const post = await writeEntries(
      replaced.table,
      'POST',
      JSON.stringify({ prefixes: ['2547', '+25470', '2549'] }),
      'application/json',
    );
    const added = (await post.json()) as Written;
    expect(added).toMatchObject({ added: 2, removed: 0, unchanged: 1 });
    expect(added.table).toMatchObject({ version: 3, entryCount: 4 });

    const same = await writeEntries(added.table, 'PUT', '2541\n2547\n25470\n2549\n');
    expect((await same.json()) as Written).toMatchObject({ added: 0, removed: 0, unchanged: 4, table: { version: 3 } });

    const csv = await h().api(`/prefix-tables/${table.id}/entries`, { headers: { accept: 'text/csv' } });
    expect(csv.headers.get('content-type')).toContain('text/csv');
    expect(await csv.text()).toBe('prefix\n2541\n2547\n25470\n2549\n');
    const asJson = await h().api(`/prefix-tables/${table.id}/entries`, { headers: { accept: 'application/json' } });
    expect(await asJson.json()).toEqual({
      prefixTableId: table.id,
      version: 3,
      contentHash: hashOf(['2541', '2547', '25470', '2549']),
      prefixes: ['2541', '2547', '25470', '2549'],
    });

    const shrunk = await writeEntries(added.table, 'PUT', '2549\n');
    expect((await shrunk.json()) as Written).toMatchObject({
      added: 0,
      removed: 3,
      unchanged: 1,
      table: { version: 4, entryCount: 1 },
    });
  });

  it('streams an import whatever the path case or a trailing slash, as the router routes it', async () => {
    const table = await newTable();
    const res = await h().api(`/prefix-tables/${table.id}/Entries/`, {
      method: 'PUT',
      body: JSON.stringify({ prefixes: ['2547'] }),
      headers: { 'content-type': 'application/json', 'If-Match': '"1"' },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ added: 1 });
  });

  it('gives its connection back when an export is never read (HEAD)', async () => {
    const table = await newTable();
    // More HEADs than the pool has connections: a leaked snapshot each would leave none for the GET.
    for (let i = 0; i < h().config.postgres.poolMax * 2; i++) {
      expect((await h().api(`/prefix-tables/${table.id}/entries`, { method: 'HEAD' })).status).toBe(200);
    }
    const res = await h().api(`/prefix-tables/${table.id}/entries`, { headers: { accept: 'application/json' } });
    expect(await res.json()).toEqual({ prefixTableId: table.id, version: 1, contentHash: hashOf([]), prefixes: [] });
  });

  it('refuses a bad line, naming it, and writes nothing', async () => {
    const table = await newTable();
    const lines = Array.from({ length: 100_000 }, (_, i) => String(250_000_000 + i));
    lines[76_542] = '25x7';
    const res = await writeEntries(table, 'PUT', `${lines.join('\n')}\n`);
    const { body } = await expectInvalid(res, ['line 76543']);
    expect(body.errors?.[0]?.message).toContain('"25x7"');
    expect(await (await h().api(`/prefix-tables/${table.id}`)).json()).toMatchObject({ version: 1, entryCount: 0 });
    const { rows } = await h().resources.db.query(
      'SELECT count(*)::int AS n FROM ops.prefix_table_entries WHERE prefix_table_id = $1',
      [table.id],
    );
    expect(rows[0]).toEqual({ n: 0 });
  });

  it('refuses a prefix given twice, naming both lines once the table has entries', async () => {
    const table = await newTable();
    const empty = await expectInvalid(await writeEntries(table, 'PUT', '2547\n2541\n+2547\n'), ['body']);
    expect(empty.body.errors?.[0]?.message).toContain('"2547"');
    const filled = (await (await writeEntries(table, 'PUT', '2547\n')).json()) as Written;
    const again = await expectInvalid(await writeEntries(filled.table, 'PUT', '2541\n2549\n2541\n'), ['line 3']);
    expect(again.body.errors?.[0]?.message).toBe('prefix "2541" repeats line 1');
    const json = JSON.stringify({ prefixes: ['2541', '2541'] });
    await expectInvalid(await writeEntries(filled.table, 'POST', json, 'application/json'), ['prefixes[1]']);
    expect(await (await h().api(`/prefix-tables/${table.id}`)).json()).toMatchObject({ version: 2, entryCount: 1 });
  });

  it.each([
    ['16 digits', '1234567890123456\n', 'line 1'],
    ['an empty line', '2547\n\n2541\n', 'line 2'],
    ['two columns', '2547,KE\n', 'line 1'],
    ['a letter', 'abc\n', 'line 1'],
  ])('refuses %s in CSV', async (_what, csv, field) => {
    const table = await newTable();
    await expectInvalid(await writeEntries(table, 'PUT', csv), [field]);
  });

  it.each([
    ['a number', '{"prefixes":[2547]}', 'prefixes[0]'],
    ['an unknown field', '{"prefixes":["2547"],"other":1}', 'other'],
    ['a bad prefix', '{"prefixes":["2547","12-3"]}', 'prefixes[1]'],
    ['not an object', '["2547"]', 'body'],
  ])('refuses %s in JSON', async (_what, json, field) => {
    const table = await newTable();
    await expectInvalid(await writeEntries(table, 'PUT', json, 'application/json'), [field]);
  });

  it('answers 415 to another content type, 413 past the import limit, 412 and 428 without the right If-Match', async () => {
    const table = await newTable();
    await expectProblem(await writeEntries(table, 'PUT', '2547', 'text/plain'), 415);
    const big = '2547\n'.repeat(Math.ceil((h().config.http.prefixImportMaxBytes + 10) / 5));
    await expectProblem(await writeEntries(table, 'PUT', big), 413);
    await expectProblem(await writeEntries({ id: table.id, version: 7 }, 'PUT', '2547\n'), 412);
    await expectProblem(
      await h().api(`/prefix-tables/${table.id}/entries`, {
        method: 'PUT',
        body: '2547\n',
        headers: { 'content-type': 'text/csv' },
      }),
      428,
    );
    expect(await (await h().api(`/prefix-tables/${table.id}`)).json()).toMatchObject({ version: 1, entryCount: 0 });
  });

  it('reads a body sent compressed (gzip, deflate, br), counting the limit on what it decodes to', async () => {
    let table = await newTable();
    const encoded = (encoding: string, body: Buffer) =>
      h().api(`/prefix-tables/${table.id}/entries`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'text/csv', 'content-encoding': encoding, 'If-Match': `"${table.version}"` },
      });
    const sent: string[] = [];
    for (const [encoding, compress] of [
      ['gzip', gzipSync],
      ['deflate', deflateSync],
      ['br', brotliCompressSync],
    ] as const) {
      const prefixes = Array.from(
        { length: 1000 },
        (_, i) => `${2540 + sent.length / 1000}${String(i).padStart(4, '0')}`,
      );
      const res = await encoded(encoding, compress(`prefix\n${prefixes.join('\n')}\n`));
      expect(res.status).toBe(200);
      const written = (await res.json()) as Written;
      expect(written).toMatchObject({ received: 1000, added: 1000 });
      sent.push(...prefixes);
      table = written.table;
    }
    expect(table).toMatchObject({ entryCount: 3000, contentHash: hashOf(sent) });

    // Small on the wire, past the limit once decoded (JSON white space: read fast, and no prefix
    // reaches the database before the limit ends the body); then not gzip at all, then an
    // unknown encoding.
    const bomb = gzipSync(`{"prefixes": [${' '.repeat(h().config.http.prefixImportMaxBytes)}]}`);
    expect(bomb.length).toBeLessThan(h().config.http.prefixImportMaxBytes);
    const tooLarge = await h().api(`/prefix-tables/${table.id}/entries`, {
      method: 'POST',
      body: bomb,
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'If-Match': `"${table.version}"` },
    });
    await expectProblem(tooLarge, 413);
    const notGzip = await expectProblem(await encoded('gzip', Buffer.from('2547\n2541\n')), 400);
    expect(notGzip.body.detail).toMatch(/could not be decoded/);
    const cutShort = await expectProblem(await encoded('gzip', gzipSync('2547\n2541\n').subarray(0, -8)), 400);
    expect(cutShort.body.detail).toMatch(/could not be decoded/);
    const garbled = Buffer.from(brotliCompressSync('2547\n'.repeat(1000)));
    for (let i = 5; i < garbled.length - 3; i++) garbled[i] = (garbled[i] ?? 0) ^ 0x5a;
    const notBrotli = await expectProblem(await encoded('br', garbled), 400);
    expect(notBrotli.body.detail).toMatch(/could not be decoded/);
    const unknown = await expectProblem(await encoded('compress', gzipSync('2547\n')), 415);
    expect(unknown.body.detail).toMatch(/Content-Encoding/);
    // Names an object has by its prototype are not codings either.
    for (const coding of ['constructor', '__proto__', 'toString']) {
      await expectProblem(await encoded(coding, gzipSync('2547\n')), 415);
    }
    expect(await (await h().api(`/prefix-tables/${table.id}`)).json()).toMatchObject({
      version: table.version,
      entryCount: 3000,
    });
  });

  it('tells each of three operators using a table once, each one version higher, and refuses to delete it', async () => {
    const table = await newTable();
    const operators = await Promise.all([onboardActive(h()), onboardActive(h()), onboardActive(h())]);
    const versions: number[] = [];
    for (const { id } of operators) versions.push(await addRuleOn(table.id, id));

    const put = await writeEntries(table, 'PUT', '2547\n2541\n');
    const written = (await put.json()) as Written;
    expect(written.operators.map((o) => o.operatorId).sort()).toEqual(operators.map((o) => o.id).sort());

    for (const [i, { id }] of operators.entries()) {
      const seen = await events().waitFor(id, (e) => e.some((x) => x.type === 'operator.config.prefix_table_updated'));
      const updates = seen.filter((e) => e.type === 'operator.config.prefix_table_updated');
      expect(updates).toHaveLength(1);
      const update = updates[0] as EventEnvelope;
      expect(update.version).toBe((versions[i] ?? 0) + 1);
      expect(update.data).toEqual({
        prefixTableId: table.id,
        tableVersion: 2,
        entryCount: 2,
        contentHash: hashOf(['2541', '2547']),
        previousContentHash: hashOf([]),
        replaced: false,
        added: expect.arrayContaining(['2541', '2547']),
        removed: [],
      });
      expect(await (await h().api(`/operators/${id}`)).json()).toMatchObject({ version: (versions[i] ?? 0) + 1 });
    }

    const refused = await h().api(`/prefix-tables/${table.id}`, { method: 'DELETE', headers: { 'If-Match': '"2"' } });
    const { body } = await expectProblem(refused, 409);
    expect((body.rules as Array<{ operatorId: string }>).map((r) => r.operatorId).sort()).toEqual(
      operators.map((o) => o.id).sort(),
    );
  });

  it('does not hold a table with entries while its import uploads: a rule goes onto it meanwhile and is told', async () => {
    const table = ((await (await writeEntries(await newTable(), 'PUT', '2547\n')).json()) as Written).table;
    const operator = await onboardActive(h());
    const { finish, put } = await importStillUploading(table, '2547\n2541\n');
    let ruleVersion: number;
    try {
      ruleVersion = await addRuleOn(table.id, operator.id);
    } finally {
      finish('2549\n');
    }
    const res = await put;
    expect(res.status).toBe(200);
    const written = (await res.json()) as Written;
    expect(written).toMatchObject({ received: 3, added: 2, unchanged: 1 });
    expect(written.operators).toEqual([{ operatorId: operator.id, version: ruleVersion + 1 }]);
    const seen = await events().waitFor(operator.id, (e) =>
      e.some((x) => x.type === 'operator.config.prefix_table_updated'),
    );
    expect(seen.find((e) => e.type === 'operator.config.prefix_table_updated')).toMatchObject({
      version: ruleVersion + 1,
      data: { prefixTableId: table.id, tableVersion: table.version + 1, added: ['2541', '2549'].sort() },
    });
  });

  it('answers 412 when the table changed while its import uploaded, writing nothing', async () => {
    const table = ((await (await writeEntries(await newTable(), 'PUT', '2547\n')).json()) as Written).table;
    const { finish, put } = await importStillUploading(table, '2541\n');
    try {
      const other = (await (await writeEntries(table, 'POST', '2540\n')).json()) as Written;
      expect(other.table.version).toBe(table.version + 1);
    } finally {
      finish();
    }
    await expectProblem(await put, 412);
    expect(await (await h().api(`/prefix-tables/${table.id}`)).json()).toMatchObject({
      version: table.version + 1,
      entryCount: 2,
    });
  });

  it('stages an import with If-Match * that waited while another one filled the empty table', async () => {
    const table = await newTable();
    const first = await importStillUploading(table, '2547\n', { into: 'ops.prefix_table_entries' });
    let second: Promise<Response>;
    try {
      second = h().api(`/prefix-tables/${table.id}/entries`, {
        method: 'PUT',
        body: '2541\n',
        headers: { 'content-type': 'text/csv', 'If-Match': '*' },
      });
      await waitUntilBlockedBy(h().resources.db, first.pid, {
        failure: 'the second import never waited for the first',
      });
    } finally {
      first.finish('2549\n');
    }
    expect((await first.put).status).toBe(200);
    const res = await second;
    expect(res.status).toBe(200);
    // The second body became the whole content: the first one's prefixes went.
    expect(await res.json()).toMatchObject({
      received: 1,
      added: 1,
      removed: 2,
      table: { version: 3, entryCount: 1, contentHash: hashOf(['2541']) },
    });
  });

  it('does not tell an operator whose rules leave the table while the change waits for it', async () => {
    const table = await newTable();
    const [staying, leaving] = [await onboardActive(h()), await onboardActive(h())];
    for (const { id } of [staying, leaving]) await addRuleOn(table.id, id);
    const current = await h().api(`/operators/${leaving.id}/routing-rules`);
    const { routingRules } = (await current.json()) as { routingRules: Array<{ id: string; prefixTableId?: string }> };
    const rule = routingRules.find((r) => r.prefixTableId === table.id);
    if (!rule) throw new Error('the rule on the table is not listed');
    // The API moves `leaving`'s rule off the table (onto a prefix of its own). Its write locks the
    // operator's row (and only the tables it moves to), then waits at the rule's row for the lock
    // held here: the change comes while the rule write holds the operator, its rule not yet moved.
    const gate = await h().resources.db.connect();
    try {
      await gate.query('BEGIN');
      await gate.query('SELECT 1 FROM ops.routing_rules WHERE id = $1 FOR UPDATE', [rule.id]);
      const moved = h().api(`/operators/${leaving.id}/routing-rules/${rule.id}`, {
        method: 'PATCH',
        json: { prefixes: ['2547'] },
        headers: { 'If-Match': current.headers.get('etag') ?? '' },
      });
      const ruleWrites = await waitUntilBlockedBy(h().resources.db, await backendPid(gate), {
        failure: "the rule write never reached the rule's row",
      });
      expect(ruleWrites).toHaveLength(1);
      const put = writeEntries(table, 'PUT', '2547\n');
      await waitUntilBlockedBy(h().resources.db, ruleWrites[0]!, {
        failure: 'the change never waited for the operator',
      });
      await gate.query('ROLLBACK');
      expect((await moved).status).toBe(200);
      const written = (await (await put).json()) as Written;
      expect(written.operators.map((o) => o.operatorId)).toEqual([staying.id]);
    } finally {
      gate.release(true);
    }
  });
});
