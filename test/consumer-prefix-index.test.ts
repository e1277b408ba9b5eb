import fc from 'fast-check';
import { RoutingState, type TableLoader } from '../src/consumer/routing-state';
import type { Operator, OperatorStatus, RoutingRule } from '../src/domain/operator';
import {
  compareExcluded,
  exclusionOf,
  prefixesOf,
  rankCandidates,
  type ExclusionReason,
  type MatchingRule,
} from '../src/domain/route-order';
import type { EventEnvelope } from '../src/events/envelope';
import { fakeOperator } from './support/operators';

/**
 * The routing engine helper's longest-prefix index (src/consumer/prefix-index.ts) against the
 * plainest reading of what it holds: every rule of every operator, tried against every prefix
 * of the number. Whatever sequence of events arrives (rules replaced, tables changed by delta or
 * read again, operators created, drained and deleted), both answer the same for every number.
 */

const AT = new Date('2026-12-01T12:00:00.000Z');
const OPERATORS = ['a0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000002'];
const TABLES = ['b0000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000002'];
/** Two digits and up to four of them: prefixes overlap often, and numbers are few enough to try all. */
const prefix = fc.string({ unit: fc.constantFrom('1', '2'), minLength: 1, maxLength: 4 });
const NUMBERS = Array.from({ length: 5 }, (_, i) => i + 1).flatMap((length) =>
  Array.from({ length: 2 ** length }, (_, n) => n.toString(2).padStart(length, '0').replace(/0/g, '2')),
);

const rule = fc.record({
  id: fc.uuid({ version: 4 }),
  target: fc.oneof(fc.constantFrom(...TABLES), fc.array(prefix, { minLength: 1, maxLength: 3 })),
  priority: fc.integer({ min: 0, max: 2 }),
  weight: fc.integer({ min: 0, max: 2 }),
  cost: fc.constantFrom('0.01', '0.02'),
  enabled: fc.boolean(),
});

const step = fc.oneof(
  fc.record({
    kind: fc.constant('rules' as const),
    operator: fc.constantFrom(...OPERATORS),
    rules: fc.array(rule, { maxLength: 3 }),
  }),
  fc.record({
    kind: fc.constant('status' as const),
    operator: fc.constantFrom(...OPERATORS),
    change: fc.constantFrom('activated', 'draining', 'deleted'),
  }),
  fc.record({
    kind: fc.constant('entries' as const),
    table: fc.constantFrom(...TABLES),
    added: fc.array(prefix, { maxLength: 3 }),
    removed: fc.array(prefix, { maxLength: 3 }),
    replaced: fc.boolean(),
  }),
);

type RuleDraft = typeof rule extends fc.Arbitrary<infer R> ? R : never;

function toRule(r: RuleDraft): RoutingRule {
  const { target, cost, ...rest } = r;
  return {
    ...rest,
    ...(typeof target === 'string' ? { prefixTableId: target } : { prefixes: target }),
    costPerSegment: cost,
    currency: 'EUR',
    validFrom: null,
    validUntil: null,
    weekly: null,
  } satisfies RoutingRule;
}

/** Stands for the service's SHA-256: the helper only compares hashes. */
const hashOf = (prefixes: Iterable<string>) => [...prefixes].sort().join(',');

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
      const matching: MatchingRule = {
        ruleId: r.id,
        operatorId: operator.id,
        operatorStatus: operator.status,
        matchedPrefix: matched,
        priority: r.priority,
        weight: r.weight,
        costPerSegment: r.costPerSegment,
        currency: r.currency,
        enabled: r.enabled,
        validFrom: r.validFrom,
        validUntil: r.validUntil,
        weekly: r.weekly,
      };
      const reason = exclusionOf(matching, AT);
      if (reason) excluded.push({ rule: matching, reason });
      else candidates.push(matching);
    }
  }
  return { ranks: rankCandidates(candidates), excluded: excluded.sort((a, b) => compareExcluded(a.rule, b.rule)) };
}

describe("the routing engine helper's longest-prefix index", () => {
  it('answers every number as trying every rule would, whatever events arrive', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 25 }), async (steps) => {
        // "PostgreSQL": the tables as they are now; each operator's version and status.
        const tables = new Map(TABLES.map((id) => [id, { version: 1, prefixes: new Set<string>() }]));
        const load: TableLoader = async (id) => {
          const t = tables.get(id);
          return t && { version: t.version, contentHash: hashOf(t.prefixes), prefixes: [...t.prefixes] };
        };
        const versions = new Map<string, number>();
        const rulesOf = new Map<string, RoutingRule[]>();
        const gone = new Set<string>();
        const state = new RoutingState(load);
        const send = (operatorId: string, change: string, data: object) => {
          const version = (versions.get(operatorId) ?? 0) + 1;
          versions.set(operatorId, version);
          return state.apply({
            eventId: `${operatorId}-${version}`,
            type: `operator.config.${change}`,
            operatorId,
            version,
            occurredAt: AT.toISOString(),
            actor: 'test',
            data,
          } as EventEnvelope);
        };
        const operator = (id: string, status: OperatorStatus): Operator =>
          fakeOperator({ id, status, version: (versions.get(id) ?? 0) + 1 });

        for (const s of steps) {
          if (s.kind === 'rules') {
            if (gone.has(s.operator)) continue;
            const rules = s.rules.map(toRule);
            rulesOf.set(s.operator, rules);
            if (!versions.has(s.operator))
              await send(s.operator, 'created', { operator: operator(s.operator, 'ACTIVE'), routingRules: rules });
            else await send(s.operator, 'routing_updated', { routingRules: rules });
          } else if (s.kind === 'status') {
            if (!versions.has(s.operator) || gone.has(s.operator)) continue;
            const status = ({ activated: 'ACTIVE', draining: 'DRAINING', deleted: 'DELETED' } as const)[s.change];
            await send(s.operator, s.change, { operator: operator(s.operator, status) });
            if (s.change === 'deleted') gone.add(s.operator);
          } else {
            const table = tables.get(s.table)!;
            const previousContentHash = hashOf(table.prefixes);
            const removed = s.removed.filter((p) => table.prefixes.has(p));
            const added = s.added.filter((p) => !table.prefixes.has(p) && !removed.includes(p));
            for (const p of removed) table.prefixes.delete(p);
            for (const p of added) table.prefixes.add(p);
            table.version += 1;
            // Told through every operator whose rules use it, as the service fans a change out.
            const change = {
              prefixTableId: s.table,
              tableVersion: table.version,
              entryCount: table.prefixes.size,
              contentHash: hashOf(table.prefixes),
              previousContentHash,
              ...(s.replaced ? { replaced: true as const } : { replaced: false as const, added, removed }),
            };
            for (const [id, rules] of rulesOf) {
              if (rules.some((r) => r.prefixTableId === s.table) && state.operators.has(id))
                await send(id, 'prefix_table_updated', change);
            }
          }
          for (const n of NUMBERS) expect(state.explain(n, AT)).toEqual(bruteForce(state, n));
        }
      }),
      { numRuns: 150 },
    );
  });
});
