import { randomUUID } from 'node:crypto';
import { followConfigEvents, ndjsonRecords, RoutingState } from '../src/consumer/routing-state';
import type { SnapshotRecord } from '../src/domain/routing-snapshot';
import { startHarness, type Harness } from './support/harness';
import { listenInternal, tableLoader } from './support/internal-api';
import { onboardActive } from './support/rotation';

/**
 * The routing snapshot's guarantee: writers change rules, TPS limits and a shared table while
 * the snapshot streams; a consumer that loads it and follows the stream from its sequence ends
 * with exactly what PostgreSQL holds, having applied each change once.
 */

describe('routing snapshot', () => {
  let h: Harness;
  let internal: { url: string; close(): Promise<void> };
  let tableOf: ReturnType<typeof tableLoader>;

  beforeAll(async () => {
    h = await startHarness();
    internal = await listenInternal(h);
    tableOf = tableLoader(internal.url);
  });
  afterAll(async () => {
    await internal.close();
    await h.stop();
  });

  it('loads, follows the stream from its sequence and ends as PostgreSQL is, each change applied once', async () => {
    const table = (await (
      await h.api('/prefix-tables', { method: 'POST', json: { name: `snap ${randomUUID()}` } })
    ).json()) as {
      id: string;
    };
    const operators = (await Promise.all([onboardActive(h), onboardActive(h), onboardActive(h)])).map((o) => o.id);
    const rule = (i: number) => ({
      prefixTableId: table.id,
      priority: i % 7,
      weight: 10,
      costPerSegment: `0.0${i % 9}`,
      currency: 'EUR',
    });
    const any = { 'If-Match': '*' };
    for (const id of operators) {
      await h.api(`/operators/${id}/routing-rules`, { method: 'PUT', json: { routingRules: [rule(0)] }, headers: any });
    }

    // Writers: rules, TPS limits and the shared table's entries (and name) change until told to stop.
    let writing = true;
    const writers = [
      ...operators.map(async (id, w) => {
        for (let i = 1; writing; i++) {
          const res = await h.api(`/operators/${id}/routing-rules`, {
            method: 'PUT',
            json: {
              routingRules: [rule(i + w), { ...rule(i), prefixTableId: undefined, prefixes: [`99${w}${i % 50}`] }],
            },
            headers: any,
          });
          expect(res.status).toBe(200);
          if (i % 3 === 0) {
            const tps = await h.api(`/operators/${id}/tps-limit`, {
              method: 'PUT',
              json: { tpsCap: 10 + i, burstWindowMs: 1000, enforcementMode: 'shape' },
              headers: any,
            });
            expect(tps.status).toBe(200);
          }
        }
      }),
      (async () => {
        for (let i = 1; writing; i++) {
          // A rename bumps the table's version, not its content: no event, and the delta after it still applies.
          if (i % 4 === 0) {
            const renamed = await h.api(`/prefix-tables/${table.id}`, {
              method: 'PATCH',
              json: { name: `snap ${randomUUID()}` },
              headers: any,
            });
            expect(renamed.status).toBe(200);
          }
          const body = Array.from({ length: 20 + (i % 5) }, (_, k) => `98${(i + k) % 40}`).join('\n');
          const res = await h.api(`/prefix-tables/${table.id}/entries`, {
            method: 'PUT',
            body: `${body}\n`,
            headers: { 'content-type': 'text/csv', ...any },
          });
          expect(res.status).toBe(200);
        }
      })(),
    ];

    await new Promise((r) => setTimeout(r, 300));
    const state = new RoutingState(tableOf, { recordApplied: true });
    const res = await fetch(`${internal.url}/routing/snapshot`);
    expect(res.headers.get('content-type')).toContain('application/x-ndjson');
    const from = await state.loadSnapshot(
      ndjsonRecords<SnapshotRecord>(res.body as unknown as AsyncIterable<Uint8Array>),
    );
    const atSnapshot = new Map(operators.map((id) => [id, state.operators.get(id)?.version ?? 0]));
    const follower = await followConfigEvents(h.resources.nats, h.config.nats.stream, from, state);

    await new Promise((r) => setTimeout(r, 700));
    writing = false;
    await Promise.all(writers);

    // Caught up once every operator's version is the database's.
    const final = new Map<string, number>();
    for (const id of operators)
      final.set(id, ((await (await h.api(`/operators/${id}`)).json()) as { version: number }).version);
    const deadline = Date.now() + 20_000;
    while (operators.some((id) => state.operators.get(id)?.version !== final.get(id)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await follower.stop();

    for (const id of operators) {
      const held = state.operators.get(id);
      const rules = (await (await h.api(`/operators/${id}/routing-rules`)).json()) as { routingRules: unknown[] };
      const tps = (await (await h.api(`/operators/${id}/tps-limit`)).json()) as { tpsLimit: unknown };
      expect(held?.version).toBe(final.get(id));
      expect(held?.routingRules).toEqual(rules.routingRules);
      expect(held?.tpsLimit).toEqual(tps.tpsLimit);
      // Every version after the snapshot's, each once, none missing.
      const first = (atSnapshot.get(id) ?? 0) + 1;
      const expected = Array.from({ length: (final.get(id) ?? 0) - first + 1 }, (_, k) => first + k);
      expect(state.applied.get(id) ?? []).toEqual(expected);
      expect(expected.length).toBeGreaterThan(0);
    }
    const truth = await tableOf(table.id);
    if (!truth || truth === 'unchanged') throw new Error(`table ${table.id} is gone`);
    expect([...(state.tables.get(table.id)?.prefixes ?? [])].sort()).toEqual(truth.prefixes);
    expect(state.tables.get(table.id)?.version).toBe(truth.version);
    expect(state.tables.get(table.id)?.contentHash).toBe(truth.contentHash);
  });

  it('applies an entries change made after a rename as a delta, without reading the table again', async () => {
    const any = { 'If-Match': '*' };
    const table = (await (
      await h.api('/prefix-tables', { method: 'POST', json: { name: `renamed ${randomUUID()}` } })
    ).json()) as { id: string };
    const { id } = await onboardActive(h);
    const rule = { prefixTableId: table.id, priority: 1, weight: 1, costPerSegment: '0.01', currency: 'EUR' };
    await h.api(`/operators/${id}/routing-rules`, { method: 'PUT', json: { routingRules: [rule] }, headers: any });
    const csv = { 'content-type': 'text/csv', ...any };
    await h.api(`/prefix-tables/${table.id}/entries`, { method: 'PUT', body: '2541\n', headers: csv });

    const reads: string[] = [];
    const state = new RoutingState(async (t) => {
      reads.push(t);
      return tableOf(t);
    });
    const res = await fetch(`${internal.url}/routing/snapshot`);
    const from = await state.loadSnapshot(
      ndjsonRecords<SnapshotRecord>(res.body as unknown as AsyncIterable<Uint8Array>),
    );
    const follower = await followConfigEvents(h.resources.nats, h.config.nats.stream, from, state);
    const renamed = await h.api(`/prefix-tables/${table.id}`, {
      method: 'PATCH',
      json: { name: `x ${id}` },
      headers: any,
    });
    expect(renamed.status).toBe(200);
    const added = await h.api(`/prefix-tables/${table.id}/entries`, { method: 'POST', body: '2547\n', headers: csv });
    expect(added.status).toBe(200);

    const final = ((await (await h.api(`/operators/${id}`)).json()) as { version: number }).version;
    const deadline = Date.now() + 10_000;
    while (state.operators.get(id)?.version !== final && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    await follower.stop();
    expect(state.operators.get(id)?.version).toBe(final);
    const truth = await tableOf(table.id);
    if (!truth || truth === 'unchanged') throw new Error(`table ${table.id} is gone`);
    expect([...(state.tables.get(table.id)?.prefixes ?? [])].sort()).toEqual(['2541', '2547']);
    expect(state.tables.get(table.id)).toMatchObject({ version: truth.version, contentHash: truth.contentHash });
    expect(reads.filter((t) => t === table.id)).toEqual([]);

    // A consumer naming the version it holds is told it is current (304), or sent the table.
    const entries = `${internal.url}/prefix-tables/${table.id}/entries`;
    const current = await fetch(entries, { headers: { 'if-none-match': `"${truth.version}"` } });
    expect(current.status).toBe(304);
    expect(current.headers.get('etag')).toBe(`"${truth.version}"`);
    expect(await current.text()).toBe('');
    for (const held of ['*', `"0", W/"${truth.version}"`]) {
      expect((await fetch(entries, { headers: { 'if-none-match': held } })).status).toBe(304);
    }
    const older = await fetch(entries, { headers: { 'if-none-match': `"${truth.version - 1}", "x"` } });
    expect(older.status).toBe(200);
    expect(((await older.json()) as { prefixes: string[] }).prefixes).toEqual(['2541', '2547']);
  });

  it('pages a large table, and a reader gone half-way leaves no transaction or COPY behind', async () => {
    const table = (await (
      await h.api('/prefix-tables', { method: 'POST', json: { name: `big ${randomUUID()}` } })
    ).json()) as { id: string };
    const prefixes = Array.from({ length: 200_000 }, (_, k) => `97${String(k).padStart(6, '0')}`);
    const put = await h.api(`/prefix-tables/${table.id}/entries`, {
      method: 'PUT',
      body: `${prefixes.join('\n')}\n`,
      headers: { 'content-type': 'text/csv', 'If-Match': '*' },
    });
    expect(put.status).toBe(200);
    const { id } = await onboardActive(h);
    const rules = {
      routingRules: [{ prefixTableId: table.id, priority: 1, weight: 1, costPerSegment: '0.01', currency: 'EUR' }],
    };
    const ruled = await h.api(`/operators/${id}/routing-rules`, {
      method: 'PUT',
      json: rules,
      headers: { 'If-Match': '*' },
    });
    expect(ruled.status).toBe(200);

    // Gone after the first chunk of entries.
    const abort = new AbortController();
    const cut = await fetch(`${internal.url}/routing/snapshot`, { signal: abort.signal });
    const reader = cut.body?.getReader();
    let seen = '';
    while (!seen.includes('prefixTableEntries')) {
      const chunk = await reader?.read();
      if (!chunk || chunk.done) throw new Error('the snapshot ended before its entries');
      seen += Buffer.from(chunk.value).toString();
    }
    abort.abort();
    const lingering = async () =>
      (
        await h.resources.db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
              AND (state = 'idle in transaction' OR query LIKE 'COPY%' AND state = 'active')`,
        )
      ).rows[0]?.n;
    const deadline = Date.now() + 5_000;
    while ((await lingering()) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await lingering()).toBe(0);

    // Read whole: the table's record first, then its entries in pages of at most 10,000.
    const records: SnapshotRecord[] = [];
    const res = await fetch(`${internal.url}/routing/snapshot`);
    for await (const r of ndjsonRecords<SnapshotRecord>(res.body as unknown as AsyncIterable<Uint8Array>))
      records.push(r);
    const tableAt = records.findIndex((r) => r.type === 'prefixTable' && r.table.id === table.id);
    const pages = records.flatMap((r, at) =>
      r.type === 'prefixTableEntries' && r.prefixTableId === table.id ? [{ r, at }] : [],
    );
    expect(tableAt).toBeGreaterThan(0);
    expect(pages.every((p) => p.at > tableAt && p.r.prefixes.length <= 10_000)).toBe(true);
    expect(pages.map((p) => p.r.prefixes.length)).toEqual(Array(20).fill(10_000));
    expect(pages.flatMap((p) => p.r.prefixes)).toEqual(prefixes);
    expect(records.at(-1)?.type).toBe('end');
    // The database is shared with the other test files: leave no 200,000 rows behind.
    await h.resources.db.query('DELETE FROM ops.prefix_table_entries WHERE prefix_table_id = $1', [table.id]);
  });
});
