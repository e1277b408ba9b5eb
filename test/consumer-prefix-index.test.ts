import fc from 'fast-check';
import { RoutingState } from '../src/consumer/routing-state';
import type { OperatorStatus, RoutingRule } from '../src/domain/operator';
import {
  compareExcluded,
  exclusionOf,
  matchingRule,
  prefixesOf,
  rankCandidates,
  type ExclusionReason,
  type MatchingRule,
} from '../src/domain/route-order';
import type { PrefixTableChange } from '../src/domain/routing';
import type { SnapshotRecord } from '../src/domain/routing-snapshot';
import type { EventEnvelope } from '../src/events/envelope';
import { fakeOperator } from './support/operators';

/**
 * The routing engine helper (src/consumer/routing-state.ts) against a model of the service:
 * "PostgreSQL" (operators with their rules, tables with their entries and versions), the events
 * each change publishes, queued per operator and delivered interleaved across operators (the
 * stream keeps only each operator's order), renames that bump a table's version without an
 * event, and table reads that fail and are retried. After every step its longest-prefix index
 * (src/consumer/prefix-index.ts) answers every number as trying every held rule would; once every
 * event is delivered, it holds exactly what "PostgreSQL" holds. The orders that need a table read
 * again are spelled out one by one in test/consumer-routing-state.test.ts.
 */

const AT = new Date('2026-12-01T12:00:00.000Z');
const OPERATORS = [
  'a0000000-0000-4000-8000-000000000001',
  'a0000000-0000-4000-8000-000000000002',
  'a0000000-0000-4000-8000-000000000003',
];
const TABLES = ['b0000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000002'];
/** Two digits and up to four of them: prefixes overlap often, and numbers are few enough to try all. */
const prefix = fc.string({ unit: fc.constantFrom('1', '2'), minLength: 1, maxLength: 4 });
const NUMBERS = Array.from({ length: 4 }, (_, i) => i + 1).flatMap((length) =>
  Array.from({ length: 2 ** length }, (_, n) => n.toString(2).padStart(length, '0').replace(/0/g, '2')),
);
/** Stands for the service's SHA-256: the helper only compares hashes. */
const hashOf = (prefixes: Iterable<string>) => [...prefixes].sort().join(',');

const rule = fc.record({
  // Mostly on tables: their changes reach the helper through every operator that uses them.
  target: fc.oneof(
    { arbitrary: fc.constantFrom(...TABLES), weight: 3 },
    { arbitrary: fc.array(prefix, { minLength: 1, maxLength: 3 }), weight: 1 },
  ),
  priority: fc.integer({ min: 0, max: 2 }),
  weight: fc.integer({ min: 0, max: 2 }),
  cost: fc.constantFrom('0.01', '0.02'),
  enabled: fc.boolean(),
});
type RuleDraft = typeof rule extends fc.Arbitrary<infer R> ? R : never;

const operatorId = fc.constantFrom(...OPERATORS);
const tableId = fc.constantFrom(...TABLES);
const change = fc.oneof(
  fc.record({ kind: fc.constant('rules' as const), operator: operatorId, rules: fc.array(rule, { maxLength: 3 }) }),
  fc.record({
    kind: fc.constant('status' as const),
    operator: operatorId,
    // `updated`: a change that leaves routing as it was (its name, say).
    change: fc.constantFrom('activated', 'draining', 'deleted', 'updated'),
  }),
  fc.record({
    kind: fc.constant('entries' as const),
    table: tableId,
    added: fc.array(prefix, { maxLength: 3 }),
    removed: fc.array(prefix, { maxLength: 3 }),
    replaced: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('rename' as const), table: tableId }),
);
const step = fc.oneof(
  change,
  // Twice as likely as a change: queues stay short, and still grow sometimes.
  fc.record({ kind: fc.constant('deliver' as const), operator: operatorId, tableReadFails: fc.boolean() }),
  fc.record({ kind: fc.constant('deliver' as const), operator: operatorId, tableReadFails: fc.constant(false) }),
);
type Change = typeof change extends fc.Arbitrary<infer C> ? C : never;

/** "PostgreSQL" and the stream: what each change commits and the events it queues per operator. */
class Service {
  readonly tables = new Map(TABLES.map((id) => [id, { version: 1, prefixes: new Set<string>() }]));
  readonly operators = new Map<string, { version: number; status: OperatorStatus; rules: RoutingRule[] }>();
  readonly queues = new Map<string, EventEnvelope[]>(OPERATORS.map((id) => [id, []]));
  private rulesMade = 0;

  commit(c: Change): void {
    if (c.kind === 'rules') {
      const held = this.operators.get(c.operator);
      if (held?.status === 'DELETED') return;
      const rules = c.rules.map((r) => this.toRule(r));
      if (!held) {
        this.operators.set(c.operator, { version: 1, status: 'ACTIVE', rules });
        this.publish(c.operator, 'created', { operator: this.operatorOf(c.operator), routingRules: rules });
      } else {
        held.version += 1;
        held.rules = rules;
        this.publish(c.operator, 'routing_updated', { routingRules: rules });
      }
    } else if (c.kind === 'status') {
      const held = this.operators.get(c.operator);
      if (!held || held.status === 'DELETED') return;
      held.version += 1;
      if (c.change !== 'updated') {
        held.status = ({ activated: 'ACTIVE', draining: 'DRAINING', deleted: 'DELETED' } as const)[c.change];
      }
      this.publish(c.operator, c.change, { operator: this.operatorOf(c.operator) });
    } else if (c.kind === 'rename') {
      this.tables.get(c.table)!.version += 1;
    } else {
      const table = this.tables.get(c.table)!;
      const previousContentHash = hashOf(table.prefixes);
      const removed = [...new Set(c.removed)].filter((p) => table.prefixes.has(p));
      const added = [...new Set(c.added)].filter((p) => !table.prefixes.has(p) && !removed.includes(p));
      if (added.length === 0 && removed.length === 0) return; // the service publishes nothing either
      for (const p of removed) table.prefixes.delete(p);
      for (const p of added) table.prefixes.add(p);
      table.version += 1;
      const data: PrefixTableChange = {
        prefixTableId: c.table,
        tableVersion: table.version,
        entryCount: table.prefixes.size,
        contentHash: hashOf(table.prefixes),
        previousContentHash,
        ...(c.replaced ? { replaced: true as const } : { replaced: false as const, added, removed }),
      };
      // To every live operator whose rules use the table now, each at its next version.
      for (const [id, o] of this.operators) {
        if (o.status === 'DELETED' || !o.rules.some((r) => r.prefixTableId === c.table)) continue;
        o.version += 1;
        this.publish(id, 'prefix_table_updated', data);
      }
    }
  }

  snapshot(): SnapshotRecord[] {
    const records: SnapshotRecord[] = [{ type: 'snapshot', stream: 'S', streamSequence: 1, takenAt: AT.toISOString() }];
    for (const [id, t] of this.tables) {
      records.push({
        type: 'prefixTable',
        table: {
          id,
          name: id,
          description: '',
          version: t.version,
          entryCount: t.prefixes.size,
          contentHash: hashOf(t.prefixes),
          createdAt: AT.toISOString(),
          createdBy: 'test',
          updatedAt: AT.toISOString(),
          updatedBy: 'test',
        },
      });
      records.push({ type: 'prefixTableEntries', prefixTableId: id, prefixes: [...t.prefixes] });
    }
    for (const [id, o] of this.operators) {
      if (o.status === 'DELETED') continue;
      records.push({
        type: 'operator',
        operator: this.operatorOf(id),
        version: o.version,
        routingRules: o.rules,
        tpsLimit: null,
      });
    }
    records.push({ type: 'end', operators: this.operators.size, prefixTables: this.tables.size });
    return records;
  }

  private operatorOf(id: string) {
    const o = this.operators.get(id)!;
    return fakeOperator({ id, status: o.status, version: o.version });
  }

  private publish(operatorId: string, change: string, data: object): void {
    const version = this.operators.get(operatorId)!.version;
    this.queues.get(operatorId)!.push({
      eventId: `${operatorId}-${version}`,
      type: `operator.config.${change}`,
      operatorId,
      version,
      occurredAt: AT.toISOString(),
      actor: 'test',
      data,
    } as EventEnvelope);
  }

  /** Rule ids made in order: distinct, so that every order of them is one order. */
  private toRule({ target, cost, ...rest }: RuleDraft): RoutingRule {
    const n = String(++this.rulesMade).padStart(12, '0');
    return {
      ...rest,
      id: `c0000000-0000-4000-8000-${n}`,
      ...(typeof target === 'string' ? { prefixTableId: target } : { prefixes: target }),
      costPerSegment: cost,
      currency: 'EUR',
      validFrom: null,
      validUntil: null,
      weekly: null,
    };
  }
}

/** The answer without an index: every held rule of every held operator, each prefix tried. */
function bruteForce(state: RoutingState, destination: string) {
  const prefixes = prefixesOf(destination);
  const candidates: MatchingRule[] = [];
  const excluded: Array<{ rule: MatchingRule; reason: ExclusionReason }> = [];
  for (const { operator, routingRules } of state.operators.values()) {
    for (const r of routingRules) {
      const table = r.prefixTableId ? state.tables.get(r.prefixTableId)?.prefixes : undefined;
      const matched = [...prefixes]
        .reverse()
        .find((p) => (r.prefixes ? r.prefixes.includes(p) : (table?.has(p) ?? false)));
      if (matched === undefined) continue;
      const matching = matchingRule(operator, r, matched);
      const reason = exclusionOf(matching, AT);
      if (reason) excluded.push({ rule: matching, reason });
      else candidates.push(matching);
    }
  }
  return { ranks: rankCandidates(candidates), excluded: excluded.sort((a, b) => compareExcluded(a.rule, b.rule)) };
}

describe("the routing engine helper's state and longest-prefix index", () => {
  it('answers as trying every rule would after every step, and ends as "PostgreSQL" is', async () => {
    // Over all runs: both ways of following a table (its listed changes applied, the table read) ran.
    const seen = { deltas: 0, reads: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.array(change, { maxLength: 8, size: 'max' }),
        fc.nat(2),
        fc.array(step, { minLength: 10, maxLength: 30, size: 'max' }),
        async (before, replayed, steps) => {
          const service = new Service();
          for (const c of before) service.commit(c);
          // In the snapshot already; the last few come again after its sequence, as they may.
          for (const queue of service.queues.values()) queue.splice(0, Math.max(0, queue.length - replayed));

          let failNextRead = false;
          const state = new RoutingState(async (id, held) => {
            if (failNextRead) {
              failNextRead = false;
              throw new Error('the internal API did not answer');
            }
            const t = service.tables.get(id);
            if (t && held?.version === t.version) return 'unchanged';
            seen.reads += 1;
            return t && { version: t.version, contentHash: hashOf(t.prefixes), prefixes: [...t.prefixes] };
          });
          await state.loadSnapshot(
            (async function* () {
              yield* service.snapshot();
            })(),
          );
          const check = () => {
            for (const n of NUMBERS) expect(state.explain(n, AT)).toEqual(bruteForce(state, n));
          };
          /** The next event of an operator, applied; one whose table read failed is applied again, as the follower does. */
          const deliver = async (id: string, tableReadFails: boolean) => {
            const event = service.queues.get(id)!.shift();
            if (!event) return;
            const table =
              event.type === 'operator.config.prefix_table_updated' ? (event.data as PrefixTableChange) : undefined;
            const heldBefore = table && state.tables.get(table.prefixTableId)?.version;
            const readsBefore = seen.reads;
            failNextRead = tableReadFails;
            let applied = await state.apply(event).catch(() => undefined);
            failNextRead = false;
            if (applied === undefined) {
              check(); // a failed event leaves what the index answers as it was, consistent
              applied = await state.apply(event);
            }
            // A delta: applied (a replay, at or below the operator's version held, is ignored), the
            // table held below the event's version (not brought there by another operator's event)
            // and brought to it without a read.
            if (
              applied &&
              table &&
              heldBefore !== undefined &&
              heldBefore < table.tableVersion &&
              seen.reads === readsBefore &&
              state.tables.get(table.prefixTableId)?.version === table.tableVersion
            )
              seen.deltas += 1;
          };

          check();
          for (const s of steps) {
            if (s.kind === 'deliver') await deliver(s.operator, s.tableReadFails);
            else service.commit(s);
            check();
          }
          while ([...service.queues.values()].some((q) => q.length > 0)) {
            for (const id of OPERATORS) await deliver(id, false);
          }
          check();

          for (const [id, o] of service.operators) {
            if (o.status === 'DELETED') {
              expect(state.operators.has(id)).toBe(false);
              continue;
            }
            expect(state.operators.get(id)).toMatchObject({ version: o.version, routingRules: o.rules });
            for (const r of o.rules.filter((r) => r.prefixTableId)) {
              const truth = service.tables.get(r.prefixTableId!)!;
              const held = state.tables.get(r.prefixTableId!);
              expect([...(held?.prefixes ?? [])].sort()).toEqual([...truth.prefixes].sort());
              expect(held?.contentHash).toBe(hashOf(truth.prefixes));
            }
          }
        },
      ),
      { numRuns: 150 },
    );
    expect(seen.reads).toBeGreaterThan(0);
    expect(seen.deltas).toBeGreaterThan(0);
  });
});
