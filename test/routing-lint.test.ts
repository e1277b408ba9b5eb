import { randomInt, randomUUID } from 'node:crypto';
import { LINT_KINDS, type LintFinding } from '../src/domain/routing-lint';
import { RoutingLintService } from '../src/services/routing-lint';
import { startHarness, type Harness } from './support/harness';
import { onboardActive } from './support/rotation';

/**
 * The routing lint on two fixtures written through the admin API: one with each kind of finding
 * beside near misses that must not be findings (a rule shadowed on only some prefixes, a
 * would-be shadower that is scheduled, disabled or in another currency, an entry since
 * deleted), and one clean set. The database is shared with other test files, so every lint is
 * scoped to the fixture's rules, and the prefixes start with 77 and six random digits.
 */

type RuleBody = Record<string, unknown> & { priority: number };

/** A weekly schedule with one window every day. */
const daily = (timeZone: string, start: string, end: string) => ({
  timeZone,
  windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], start, end }],
});

describe('routing lint', () => {
  let h: Harness;
  let lint: RoutingLintService;
  const base = `77${randomInt(100_000, 999_999)}`;
  const p = (suffix: string) => `${base}${suffix}`;
  /** Fixture rule and operator ids by name. */
  const ids = new Map<string, string>();
  const id = (name: string) => ids.get(name) ?? `missing ${name}`;
  const dirtyRules = [
    'a1',
    'a2',
    'a3',
    'b1',
    'b2',
    'b3',
    'b4',
    'c1',
    'c2',
    'c3',
    'c4',
    'c5',
    'd1',
    'd2',
    'e1',
    'h6',
    'i2',
    'g3',
    'h7',
    'i3',
  ];
  const cleanRules = ['f1', 'f2', 'g1', 'g2', 'h1', 'h2', 'h3', 'h4', 'h5', 'i1'];

  async function newTable(...writes: string[][]): Promise<string> {
    const res = await h.api('/prefix-tables', { method: 'POST', json: { name: `lint ${randomUUID()}` } });
    if (res.status !== 201) throw new Error(`POST /prefix-tables answered ${res.status}: ${await res.text()}`);
    const table = (await res.json()) as { id: string; version: number };
    let version = table.version;
    for (const prefixes of writes) {
      const put = await h.api(`/prefix-tables/${table.id}/entries`, {
        method: 'PUT',
        body: `${prefixes.join('\n')}\n`,
        headers: { 'content-type': 'text/csv', 'If-Match': `"${version}"` },
      });
      if (put.status !== 200) throw new Error(`PUT entries answered ${put.status}: ${await put.text()}`);
      version = ((await put.json()) as { table: { version: number } }).table.version;
    }
    return table.id;
  }

  /** Replaces the operator's rules (onboarding gave it one) and records each new rule's id by name. */
  async function setRules(operator: string, rules: Record<string, RuleBody>): Promise<void> {
    const operatorId = id(operator);
    const etag = (await h.api(`/operators/${operatorId}`)).headers.get('etag') ?? '';
    const res = await h.api(`/operators/${operatorId}/routing-rules`, {
      method: 'PUT',
      json: {
        routingRules: Object.values(rules).map((r) => ({ weight: 100, costPerSegment: '0.02', currency: 'EUR', ...r })),
      },
      headers: { 'If-Match': etag },
    });
    if (res.status !== 200) throw new Error(`PUT rules answered ${res.status}: ${await res.text()}`);
    const saved = (await res.json()) as {
      routingRules: Array<{ id: string; priority: number; prefixes?: string[]; prefixTableId?: string }>;
    };
    // The set comes back in (priority, id) order: each fixture rule of an operator differs in its
    // prefixes or table, and priority.
    const key = (r: { priority: number; prefixes?: unknown; prefixTableId?: unknown }) =>
      JSON.stringify([r.prefixTableId ?? r.prefixes, r.priority]);
    for (const [name, rule] of Object.entries(rules)) {
      const match = saved.routingRules.find((s) => key(s) === key(rule));
      if (!match) throw new Error(`rule ${name} is not in the saved set`);
      ids.set(name, match.id);
    }
  }

  const nameOf = (value: string) => [...ids.entries()].find(([, v]) => v === value)?.[0] ?? value;
  const scopeOf = (names: string[]) => names.map(id);
  /** Names in the order of their ids, as findings list rules and operators. */
  const byId = (...names: string[]) => names.map(id).sort().map(nameOf);
  /** A finding with the names of its rules and operators, for readable expectations. */
  const named = (f: LintFinding) => ({
    kind: f.kind,
    rules: f.ruleIds.map(nameOf),
    operators: f.operatorIds.map(nameOf),
  });

  beforeAll(async () => {
    h = await startHarness();
    lint = new RoutingLintService({ db: h.resources.db });
    const operators = await Promise.all(Array.from({ length: 9 }, () => onboardActive(h)));
    ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I'].forEach((name, i) => ids.set(name, operators[i]?.id ?? ''));
    // T1 once held 39 too: that entry is deleted, so b1's prefixes are 31 and 32 only.
    const [t1, t2, empty, t3] = await Promise.all([
      newTable([p('31'), p('32'), p('39')], [p('31'), p('32')]),
      newTable([p('32'), p('33')]),
      newTable(),
      newTable([p('03'), p('04')]),
    ]);

    await Promise.all([
      setRules('A', {
        a1: { prefixes: [p('31')], priority: 2, costPerSegment: '0.05' },
        // a2 and a3 meet at 42; a3 loses 42 to a2 (cheaper) but alone has 43: not shadowed.
        a2: { prefixes: [p('41'), p('42')], priority: 3, costPerSegment: '0.01' },
        a3: { prefixes: [p('42'), p('43')], priority: 3 },
      }),
      setRules('B', {
        // 31 goes to a1 (priority 2), 32 to c1 (same priority and currency, cheaper): shadowed.
        b1: { prefixTableId: t1, priority: 5 },
        // Its only rival, c2, is scheduled: it does not always compete.
        b2: { prefixes: [p('51')], priority: 5 },
        // d1 is cheaper but in EUR: not comparable, so not ahead; the two keep equal rank.
        b3: { prefixes: [p('61'), p('62')], priority: 4, currency: 'USD' },
        // Its only rival, d2, is disabled.
        b4: { prefixes: [p('81')], priority: 9 },
      }),
      setRules('C', {
        c1: { prefixTableId: t2, priority: 5, costPerSegment: '0.01' },
        c2: {
          prefixes: [p('51')],
          priority: 1,
          validFrom: '2020-01-01T00:00:00Z',
          validUntil: '2099-01-01T00:00:00Z',
        },
        c3: { prefixTableId: empty, priority: 1 },
        c4: {
          prefixes: [p('71')],
          priority: 1,
          validFrom: '2020-01-01T00:00:00Z',
          validUntil: '2021-01-01T00:00:00Z',
        },
        // Valid from a Monday to the Friday after, on weekends only: never active.
        c5: {
          prefixes: [p('72')],
          priority: 1,
          validFrom: '2099-06-01T00:00:00Z',
          validUntil: '2099-06-05T00:00:00Z',
          weekly: { timeZone: 'UTC', windows: [{ days: ['sat', 'sun'], start: '00:00', end: '24:00' }] },
        },
      }),
      setRules('D', {
        d1: { prefixes: [p('61'), p('62')], priority: 4, costPerSegment: '0.001' },
        d2: { prefixes: [p('81'), p('82')], priority: 1, enabled: false },
      }),
      setRules('E', { e1: { prefixes: [p('91')], priority: 1, enabled: false } }),
      // The clean set: f1 and g1 tie at 01 (one group sharing traffic); g2 ranks ahead of f2 at 03
      // but is scheduled, and f2 alone has 04.
      setRules('F', {
        f1: { prefixes: [p('01'), p('02')], priority: 1, costPerSegment: '0.01' },
        f2: { prefixTableId: t3, priority: 2 },
      }),
      setRules('G', {
        g1: { prefixes: [p('01')], priority: 1, costPerSegment: '0.01' },
        g2: { prefixes: [p('03')], priority: 1, currency: 'USD', validUntil: '2099-01-01T00:00:00Z' },
        // Shares 17 with h7 and i3 in a third currency, but only at night, when they are out.
        g3: { prefixes: [p('17')], priority: 4, currency: 'GBP', weekly: daily('UTC', '20:00', '08:00') },
      }),
      // Rules sharing a prefix and a priority whose schedules never meet (clean): a rate deck and
      // its successor (h1, h2), day and night (h3, h4), and the same in two currencies (h5, i1).
      // h6 and i2 share 16 in two currencies, but i2 has expired: only that is a finding.
      setRules('H', {
        h1: { prefixes: [p('11'), p('12')], priority: 1, validUntil: '2090-01-01T00:00:00Z' },
        h2: { prefixes: [p('11')], priority: 1, validFrom: '2090-01-01T00:00:00Z' },
        h3: { prefixes: [p('13')], priority: 2, weekly: daily('Africa/Nairobi', '08:00', '20:00') },
        h4: { prefixes: [p('13'), p('14')], priority: 2, weekly: daily('Africa/Nairobi', '20:00', '08:00') },
        h5: { prefixes: [p('15')], priority: 3, weekly: daily('UTC', '08:00', '20:00') },
        h6: { prefixes: [p('16')], priority: 3 },
        h7: { prefixes: [p('17')], priority: 4, weekly: daily('UTC', '08:00', '20:00') },
      }),
      setRules('I', {
        i1: { prefixes: [p('15')], priority: 3, currency: 'USD', weekly: daily('UTC', '20:00', '08:00') },
        i2: { prefixes: [p('16')], priority: 3, currency: 'USD', validUntil: '2021-01-01T00:00:00Z' },
        i3: { prefixes: [p('17')], priority: 4, currency: 'USD', weekly: daily('UTC', '09:00', '17:00') },
      }),
    ]);
  });
  afterAll(() => h.stop());

  it('finds each kind in the first fixture, and nothing for its near misses', async () => {
    const findings = await lint.lint({ ruleIds: scopeOf(dirtyRules) });
    expect(findings.map(named)).toEqual([
      { kind: 'shadowed', rules: ['b1'], operators: ['B'] },
      { kind: 'duplicate_prefix_priority', rules: byId('a2', 'a3'), operators: ['A'] },
      ...[
        { kind: 'mixed_currency_rank', rules: byId('b3', 'd1'), operators: byId('B', 'D') },
        { kind: 'mixed_currency_rank', rules: byId('h7', 'i3'), operators: byId('H', 'I') },
      ].sort((x, y) => (id(x.rules[0] ?? '') < id(y.rules[0] ?? '') ? -1 : 1)),
      { kind: 'empty_table', rules: ['c3'], operators: ['C'] },
      ...byId('c4', 'c5', 'i2').map((rule) => ({
        kind: 'never_active_again',
        rules: [rule],
        operators: [rule.toUpperCase().slice(0, 1)],
      })),
      { kind: 'operator_without_enabled_rule', rules: [], operators: ['E'] },
    ]);
    const message = (kind: LintFinding['kind']) => findings.find((f) => f.kind === kind)?.message ?? '';
    // b1's first prefix is 31, which a1 wins.
    expect(message('shadowed')).toBe(
      `Rule ${id('b1')} is shadowed: each of its prefixes is always won by a rule ranked ahead of it (prefix ${p('31')}, for one, by rule ${id('a1')}).`,
    );
    expect(message('duplicate_prefix_priority')).toContain(`prefix ${p('42')} at priority 3`);
    const mixedOf = (rule: string) =>
      findings.find((f) => f.kind === 'mixed_currency_rank' && f.ruleIds.includes(id(rule)));
    expect(mixedOf('h7')?.message).toContain(`at priority 4 in EUR and USD,`);
    expect(mixedOf('b3')?.message).toContain(`share 2 prefixes (${p('61')}, for one) at priority 4 in EUR and USD`);
    const of = (rule: string) => findings.find((f) => f.ruleIds[0] === id(rule))?.message ?? '';
    expect(of('c4')).toContain('was valid until 2021-01-01T00:00:00.000Z');
    expect(of('c5')).toBe(
      `Rule ${id('c5')} is valid until 2099-06-05T00:00:00.000Z, and none of its weekly windows comes before then, so it can never be active again.`,
    );
    expect(message('operator_without_enabled_rule')).toBe(
      `Operator ${id('E')} is ACTIVE but has no enabled routing rule, so no traffic is routed to it.`,
    );
  });

  it('finds nothing in the clean fixture', async () => {
    expect(await lint.lint({ ruleIds: scopeOf(cleanRules) })).toEqual([]);
  });

  it('keeps a finding when one of its rules is in scope, and operator findings for the operators of the rules', async () => {
    const kinds = async (names: string[]) => (await lint.lint({ ruleIds: scopeOf(names) })).map(named);
    expect(await kinds(['b1'])).toEqual([{ kind: 'shadowed', rules: ['b1'], operators: ['B'] }]);
    expect((await kinds(['d1'])).map((f) => f.kind)).toEqual(['mixed_currency_rank']);
    expect((await kinds(['a3', 'f1'])).map((f) => f.kind)).toEqual(['duplicate_prefix_priority']);
    expect(await kinds(['e1'])).toEqual([{ kind: 'operator_without_enabled_rule', rules: [], operators: ['E'] }]);
    // g3 shares 17 with rules in two other currencies, but never meets them.
    expect(await kinds(['g3'])).toEqual([]);
    expect(await lint.lint({ ruleIds: [] })).toEqual([]);
    expect(await lint.lint({ ruleIds: ['not-a-uuid', randomUUID()] })).toEqual([]);
  });

  it('judges expiry at the instant given', async () => {
    const before = await lint.lint({ ruleIds: scopeOf(['c4']), now: new Date('2020-06-01T00:00:00Z') });
    expect(before).toEqual([]);
    const atEnd = await lint.lint({ ruleIds: scopeOf(['c4']), now: new Date('2021-01-01T00:00:00Z') });
    expect(atEnd.map((f) => f.kind)).toEqual(['never_active_again']);
  });

  it('finds the same for the fixture without a scope, in kind then rule order', async () => {
    const all = await lint.lint();
    const fixture = new Set([...dirtyRules, ...cleanRules].map(id));
    const operators = new Set(['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I'].map(id));
    const ours = all.filter((f) =>
      f.ruleIds.length > 0 ? f.ruleIds.some((r) => fixture.has(r)) : operators.has(f.operatorIds[0] ?? ''),
    );
    expect(ours).toEqual(await lint.lint({ ruleIds: [...fixture] }));
    const order = all.map((f) => `${LINT_KINDS.indexOf(f.kind)}|${f.ruleIds[0] ?? ''}`);
    expect(order).toEqual([...order].sort());
  });
});
