import { randomUUID } from 'node:crypto';
import { RoutingState, type TableLoader } from '../src/consumer/routing-state';
import type { Operator, RoutingRule } from '../src/domain/operator';
import type { PrefixTableChange } from '../src/domain/routing';
import type { SnapshotRecord } from '../src/domain/routing-snapshot';
import type { EventEnvelope } from '../src/events/envelope';
import { fakeOperator } from './support/operators';

/**
 * The routing engine's helper (src/consumer/routing-state.ts) alone, against a table loader that
 * answers what "PostgreSQL" holds now. The stream keeps each operator's versions in order but
 * not the commit order across operators (the relay publishes operators side by side), and a
 * table's changes reach the helper through every operator that uses the table.
 */

const AT = '2026-12-01T00:00:00.000Z';

const operator = (id: string, version: number): Operator => fakeOperator({ id, version });

function ruleOn(prefixTableId: string): RoutingRule {
  return {
    id: randomUUID(),
    prefixTableId,
    priority: 1,
    weight: 100,
    costPerSegment: '0.01',
    currency: 'EUR',
    enabled: true,
    validFrom: null,
    validUntil: null,
    weekly: null,
  };
}

function event(operatorId: string, version: number, change: string, data: unknown): EventEnvelope {
  return {
    eventId: randomUUID(),
    type: `operator.config.${change}`,
    operatorId,
    version,
    occurredAt: AT,
    actor: 'test',
    data,
  } as EventEnvelope;
}

/** Stands for the service's SHA-256: the helper only compares hashes. */
const hashOf = (prefixes: Iterable<string>) => [...prefixes].sort().join(',');

/** `added` to a table that held `from`, at `tableVersion`. */
const listed = (prefixTableId: string, tableVersion: number, from: string[], added: string[]): PrefixTableChange => ({
  prefixTableId,
  tableVersion,
  entryCount: from.length + added.length,
  contentHash: hashOf([...from, ...added]),
  previousContentHash: hashOf(from),
  replaced: false,
  added,
  removed: [],
});

/** A snapshot of one table at `version` holding `prefixes`, and the operators given with their rules. */
async function* snapshot(
  table: { id: string; version: number; prefixes: string[] },
  operators: Array<{ id: string; version: number; routingRules: RoutingRule[] }>,
): AsyncGenerator<SnapshotRecord> {
  yield { type: 'snapshot', stream: 'S', streamSequence: 1, takenAt: AT };
  yield {
    type: 'prefixTable',
    table: {
      id: table.id,
      name: table.id,
      description: '',
      version: table.version,
      entryCount: table.prefixes.length,
      contentHash: hashOf(table.prefixes),
      createdAt: AT,
      createdBy: 'test',
      updatedAt: AT,
      updatedBy: 'test',
    },
  };
  yield { type: 'prefixTableEntries', prefixTableId: table.id, prefixes: table.prefixes };
  for (const o of operators) {
    yield {
      type: 'operator',
      operator: operator(o.id, o.version),
      version: o.version,
      routingRules: o.routingRules,
      tpsLimit: null,
    };
  }
  yield { type: 'end', operators: operators.length, prefixTables: 1 };
}

/**
 * "PostgreSQL": the tables as they are now; `asks`, every call of the helper's loader, and
 * `reads`, the ones that sent a table whole.
 */
function database(tables: Record<string, { version: number; prefixes: string[] }>) {
  const asks: string[] = [];
  const reads: string[] = [];
  const load: TableLoader = async (id, held) => {
    asks.push(id);
    const t = tables[id];
    if (t && held?.version === t.version) return 'unchanged';
    reads.push(id);
    return t && { version: t.version, contentHash: hashOf(t.prefixes), prefixes: [...t.prefixes] };
  };
  return { tables, asks, reads, load };
}

describe("the routing engine's in-memory state", () => {
  it("reads a table again when another operator's event for the change in between has not arrived yet", async () => {
    const t = randomUUID();
    const a = randomUUID();
    const b = randomUUID();
    const db = database({ [t]: { version: 7, prefixes: ['2547', '2549', '2548'] } });
    const state = new RoutingState(db.load);
    // The snapshot: T at version 5 used by A; B not on T.
    await state.loadSnapshot(
      snapshot({ id: t, version: 5, prefixes: ['2547'] }, [
        { id: a, version: 10, routingRules: [ruleOn(t)] },
        { id: b, version: 20, routingRules: [] },
      ]),
    );
    const bRule = ruleOn(t);
    // Committed: T 5→6 (+2549, event A@11), B takes T up (B@21), T 6→7 (+2548, A@12 and B@22).
    // Reached the stream: B's two first, then A's.
    await state.apply(event(b, 21, 'routing_updated', { routingRules: [bRule] }));
    await state.apply(event(b, 22, 'prefix_table_updated', listed(t, 7, ['2547', '2549'], ['2548'])));
    await state.apply(event(a, 11, 'prefix_table_updated', listed(t, 6, ['2547'], ['2549'])));
    await state.apply(event(a, 12, 'prefix_table_updated', listed(t, 7, ['2547', '2549'], ['2548'])));

    expect([...(state.tables.get(t)?.prefixes ?? [])].sort()).toEqual(['2547', '2548', '2549']);
    expect(state.tables.get(t)?.version).toBe(7);
    expect(state.explain('254912345', new Date(AT)).ranks[0]?.groups[0]?.members).toHaveLength(2);
  });

  it('applies a listed change on the version it was made from without reading the table', async () => {
    const t = randomUUID();
    const a = randomUUID();
    const db = database({ [t]: { version: 6, prefixes: ['2547', '2549'] } });
    const state = new RoutingState(db.load);
    await state.loadSnapshot(
      snapshot({ id: t, version: 5, prefixes: ['2547'] }, [{ id: a, version: 10, routingRules: [ruleOn(t)] }]),
    );
    await state.apply(event(a, 11, 'prefix_table_updated', listed(t, 6, ['2547'], ['2549'])));
    expect([...(state.tables.get(t)?.prefixes ?? [])].sort()).toEqual(['2547', '2549']);
    expect(db.reads).toEqual([]);
  });

  it('applies a listed change made after a rename (a version with no event) without reading the table', async () => {
    const t = randomUUID();
    const a = randomUUID();
    const db = database({ [t]: { version: 7, prefixes: ['2547', '2549'] } });
    const state = new RoutingState(db.load);
    await state.loadSnapshot(
      snapshot({ id: t, version: 5, prefixes: ['2547'] }, [{ id: a, version: 10, routingRules: [ruleOn(t)] }]),
    );
    // T renamed 5→6 (no event: nothing routes by a name), then 6→7 adds 2549 to what 5 held.
    await state.apply(event(a, 11, 'prefix_table_updated', listed(t, 7, ['2547'], ['2549'])));
    expect(state.tables.get(t)).toMatchObject({ version: 7, contentHash: hashOf(['2547', '2549']) });
    expect([...(state.tables.get(t)?.prefixes ?? [])].sort()).toEqual(['2547', '2549']);
    expect(db.reads).toEqual([]);
  });

  it('from a service that sends no content hashes, applies a listed change only on the version right before it', async () => {
    const t = randomUUID();
    const a = randomUUID();
    const db = database({ [t]: { version: 7, prefixes: ['2547', '2548', '2549'] } });
    const state = new RoutingState(async (id) => {
      const table = await db.load(id);
      if (!table || table === 'unchanged') return table;
      return { version: table.version, prefixes: table.prefixes } as Awaited<ReturnType<TableLoader>>;
    });
    await state.loadSnapshot(
      snapshot({ id: t, version: 5, prefixes: ['2547'] }, [{ id: a, version: 10, routingRules: [ruleOn(t)] }]),
    );
    const old = (change: PrefixTableChange) => {
      const { previousContentHash: _, ...rest } = change;
      return rest;
    };
    // Held at 5, told of 7 (6 not here yet): read again, not applied on top of 5.
    await state.apply(event(a, 12, 'prefix_table_updated', old(listed(t, 7, ['2547', '2549'], ['2548']))));
    expect(db.reads).toEqual([t]);
    expect([...(state.tables.get(t)?.prefixes ?? [])].sort()).toEqual(['2547', '2548', '2549']);
    // Read without a hash, then told of 8 made from 7: applied.
    await state.apply(event(a, 13, 'prefix_table_updated', old(listed(t, 8, ['2547', '2548', '2549'], ['2550']))));
    expect(db.reads).toEqual([t]);
    expect(state.tables.get(t)?.version).toBe(8);
  });

  it('reads a table an operator takes up even when it holds it for another whose events are behind', async () => {
    const t = randomUUID();
    const a = randomUUID();
    const b = randomUUID();
    // Committed: B deleted (B@11); T gained 2547 while no live operator used it (no event); A created on T.
    const db = database({ [t]: { version: 2, prefixes: ['2547'] } });
    const state = new RoutingState(db.load);
    await state.loadSnapshot(
      snapshot({ id: t, version: 1, prefixes: [] }, [{ id: b, version: 10, routingRules: [ruleOn(t)] }]),
    );
    // A's events reach the helper before B's: T is still held, for B.
    await state.apply(event(a, 1, 'created', { operator: operator(a, 1), routingRules: [ruleOn(t)] }));
    await state.apply(event(b, 11, 'deleted', { operator: operator(b, 11) }));
    expect(db.reads).toEqual([t]);
    expect([...(state.tables.get(t)?.prefixes ?? [])]).toEqual(['2547']);
    expect(state.explain('254712', new Date(AT)).ranks).toHaveLength(1);
  });

  it('asks, and does not read again, a table that operators take up at the version it holds', async () => {
    const t = randomUUID();
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    const db = database({ [t]: { version: 3, prefixes: ['2547'] } });
    const state = new RoutingState(db.load);
    await state.loadSnapshot(
      snapshot({ id: t, version: 3, prefixes: ['2547'] }, [{ id: a, version: 10, routingRules: [ruleOn(t)] }]),
    );
    for (const id of [b, c])
      await state.apply(event(id, 1, 'created', { operator: operator(id, 1), routingRules: [ruleOn(t)] }));
    expect(db.asks).toEqual([t, t]);
    expect(db.reads).toEqual([]);
    expect(state.explain('254712', new Date(AT)).ranks[0]?.groups[0]?.members).toHaveLength(3);
  });

  it('loads a second snapshot in place of the first: an operator deleted meanwhile is gone', async () => {
    const [t, u] = [randomUUID(), randomUUID()];
    const [a, x] = [randomUUID(), randomUUID()];
    const state = new RoutingState(database({}).load);
    await state.loadSnapshot(
      snapshot({ id: t, version: 1, prefixes: ['2547'] }, [
        { id: a, version: 2, routingRules: [ruleOn(t)] },
        { id: x, version: 5, routingRules: [ruleOn(t)] },
      ]),
    );
    expect(state.explain('254712', new Date(AT)).ranks[0]?.groups[0]?.members).toHaveLength(2);
    // Reloaded after a long disconnect: X was deleted, T replaced by U; neither event is replayed.
    await state.loadSnapshot(
      snapshot({ id: u, version: 1, prefixes: ['2549'] }, [{ id: a, version: 3, routingRules: [ruleOn(u)] }]),
    );
    expect([...state.operators.keys()]).toEqual([a]);
    expect([...state.tables.keys()]).toEqual([u]);
    expect(state.explain('254712', new Date(AT)).ranks).toEqual([]);
    expect(state.explain('254912', new Date(AT)).ranks[0]?.groups[0]?.members).toHaveLength(1);
  });

  it('keeps what it held, for explain too, while a reload is read and when it is cut short', async () => {
    const [t, u] = [randomUUID(), randomUUID()];
    const a = randomUUID();
    const state = new RoutingState(database({}).load);
    await state.loadSnapshot(
      snapshot({ id: t, version: 1, prefixes: ['2547'] }, [{ id: a, version: 2, routingRules: [ruleOn(t)] }]),
    );
    const seenWhileReading: number[] = [];
    async function* cutShort(): AsyncGenerator<SnapshotRecord> {
      for await (const record of snapshot({ id: u, version: 1, prefixes: ['2549'] }, [])) {
        seenWhileReading.push(state.explain('254712', new Date(AT)).ranks.length);
        if (record.type !== 'end') yield record; // the connection drops before the end record
      }
    }
    await expect(state.loadSnapshot(cutShort())).rejects.toThrow(/cut short/);
    expect(seenWhileReading.length).toBeGreaterThan(2);
    expect(seenWhileReading.every((ranks) => ranks === 1)).toBe(true);
    expect([...state.operators.keys()]).toEqual([a]);
    expect([...state.tables.keys()]).toEqual([t]);
    expect(state.explain('254712', new Date(AT)).ranks).toHaveLength(1);
  });

  it('takes the number as explain does: a leading + dropped, anything but 1 to 15 digits refused', async () => {
    const t = randomUUID();
    const a = randomUUID();
    const state = new RoutingState(database({}).load);
    await state.loadSnapshot(
      snapshot({ id: t, version: 1, prefixes: ['2547'] }, [{ id: a, version: 2, routingRules: [ruleOn(t)] }]),
    );
    const at = new Date(AT);
    expect(state.explain('+254712345678', at)).toEqual(state.explain('254712345678', at));
    expect(state.explain('+254712345678', at).ranks).toHaveLength(1);
    for (const bad of ['2547123456789012', '254-712', '', '+', '++2547']) {
      expect(() => state.explain(bad, at)).toThrow(RangeError);
    }
  });

  it("refuses a loader's 'unchanged' for a table it does not hold", async () => {
    const t = randomUUID();
    const a = randomUUID();
    const state = new RoutingState(async () => 'unchanged');
    const created = event(a, 1, 'created', { operator: operator(a, 1), routingRules: [ruleOn(t)] });
    await expect(state.apply(created)).rejects.toThrow(/not held/);
    expect(state.operators.has(a)).toBe(false);
  });

  it('leaves out an operator not yet announced, and reads its tables when its created event comes', async () => {
    const t = randomUUID();
    const x = randomUUID();
    const db = database({ [t]: { version: 6, prefixes: ['2547', '2549'] } });
    const state = new RoutingState(db.load);
    const rules = [ruleOn(t)];
    // The snapshot holds X at version 0 (saved by its onboarding, no event yet) and T at 5.
    await state.loadSnapshot(
      snapshot({ id: t, version: 5, prefixes: ['2547'] }, [{ id: x, version: 0, routingRules: rules }]),
    );
    expect(state.operators.has(x)).toBe(false);
    expect(state.tables.has(t)).toBe(false);
    // T changed to 6 while X was at version 0 (no event for X); then X's `created`.
    await state.apply(event(x, 1, 'created', { operator: operator(x, 1), routingRules: rules }));
    expect(state.operators.get(x)?.version).toBe(1);
    expect([...(state.tables.get(t)?.prefixes ?? [])].sort()).toEqual(['2547', '2549']);
  });

  it('records the versions applied only when asked to', async () => {
    const a = randomUUID();
    const quiet = new RoutingState(database({}).load);
    const recording = new RoutingState(database({}).load, { recordApplied: true });
    for (const state of [quiet, recording]) {
      await state.apply(event(a, 1, 'created', { operator: operator(a, 1), routingRules: [] }));
      await state.apply(event(a, 2, 'updated', { operator: operator(a, 2), changed: ['name'] }));
      await state.apply(event(a, 2, 'updated', { operator: operator(a, 2), changed: ['name'] }));
    }
    expect(quiet.applied.size).toBe(0);
    expect(recording.applied.get(a)).toEqual([1, 2]);
  });
});
