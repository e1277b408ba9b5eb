import { randomInt, randomUUID } from 'node:crypto';
import { healthKey } from '../src/domain/health';
import { ndjsonRecords, RoutingState } from '../src/consumer/routing-state';
import type { SnapshotRecord } from '../src/domain/routing-snapshot';
import { startHarness, type Harness } from './support/harness';
import { listenInternal, tableLoader } from './support/internal-api';
import { expectInvalid } from './support/problems';
import { onboardActive } from './support/rotation';

/**
 * GET /routing/explain on a fixture of overlapping rules: a longer prefix with a worse priority,
 * equal prefixes with other priorities and costs, a weight group, mixed currencies, a disabled
 * rule, a weekly window in New York across the 2026 daylight-saving change, a draining operator.
 */

interface Explanation {
  ranks: Array<{
    rank: number;
    groups: Array<{
      currency: string;
      candidates: Array<{ rule: { ruleId: string }; share: number; health: string; skippedNow: boolean }>;
    }>;
  }>;
  excluded: Array<{ rule: { ruleId: string; source: { kind: string } }; reason: string }>;
}

describe('route explain', () => {
  let h: Harness;
  // Numbers no other test file routes: 88 and six random digits.
  const base = `88${randomInt(100_000, 999_999)}`;
  const number = `${base}1234`;
  const names = new Map<string, string>();
  /** Saturday 2026-03-07 08:30 in New York (EST), then Monday 2026-03-09 09:30 (EDT). */
  const beforeDst = '2026-03-07T13:30:00Z';
  const afterDst = '2026-03-09T13:30:00Z';

  async function setRules(operatorId: string, rules: Array<Record<string, unknown> & { name: string }>) {
    const etag = (await h.api(`/operators/${operatorId}`)).headers.get('etag') ?? '';
    const res = await h.api(`/operators/${operatorId}/routing-rules`, {
      method: 'PUT',
      json: { routingRules: rules.map(({ name: _name, ...r }) => ({ weight: 100, currency: 'EUR', ...r })) },
      headers: { 'If-Match': etag },
    });
    if (res.status !== 200) throw new Error(`PUT rules answered ${res.status}: ${await res.text()}`);
    const set = (await res.json()) as { routingRules: Array<{ id: string; priority: number; costPerSegment: string }> };
    // Rules come back ordered by priority, then id: match them to their names by their fields.
    for (const r of rules) {
      // Costs come back without trailing zeros ("0.010" is "0.01").
      const saved = set.routingRules.find(
        (s) => s.priority === r.priority && Number(s.costPerSegment) === Number(r.costPerSegment),
      );
      if (saved) names.set(r.name, saved.id);
    }
  }
  const nameOf = (ruleId: string) => [...names.entries()].find(([, id]) => id === ruleId)?.[0] ?? ruleId;

  beforeAll(async () => {
    h = await startHarness();
    const table = (await (
      await h.api('/prefix-tables', { method: 'POST', json: { name: `explain ${randomUUID()}` } })
    ).json()) as {
      id: string;
    };
    await h.api(`/prefix-tables/${table.id}/entries`, {
      method: 'PUT',
      body: `${base}\n${base}9\n`,
      headers: { 'content-type': 'text/csv', 'If-Match': '"1"' },
    });
    const [a, b, c, d, e, g, f] = await Promise.all(Array.from({ length: 7 }, () => onboardActive(h)));
    await setRules(a!.id, [
      { name: 'longer-worse-priority', prefixes: [`${base}12`], priority: 5, costPerSegment: '0.02' },
      { name: 'disabled', prefixes: [base], priority: 0, costPerSegment: '0.001', enabled: false },
    ]);
    await setRules(b!.id, [
      { name: 'cheap-eur-100', prefixes: [base], priority: 1, costPerSegment: '0.01' },
      {
        name: 'new-york-office-hours',
        prefixes: [`${base}1`],
        priority: 0,
        costPerSegment: '0.03',
        weekly: {
          timeZone: 'America/New_York',
          windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat'], start: '09:00', end: '17:00' }],
        },
      },
    ]);
    await setRules(c!.id, [
      { name: 'table-worse-priority', prefixTableId: table.id, priority: 2, costPerSegment: '0.005' },
    ]);
    await setRules(d!.id, [{ name: 'dear-eur', prefixes: [base], priority: 1, costPerSegment: '0.020' }]);
    await setRules(e!.id, [
      { name: 'cheap-eur-300', prefixes: [`+${base}`], priority: 1, costPerSegment: '0.010', weight: 300 },
    ]);
    await setRules(g!.id, [{ name: 'usd', prefixes: [base], priority: 1, costPerSegment: '0.5', currency: 'USD' }]);
    await setRules(f!.id, [{ name: 'draining', prefixes: [base], priority: 0, costPerSegment: '0' }]);
    expect((await h.api(`/operators/${f!.id}`, { method: 'DELETE' })).status).toBe(202);
    // B's connector is up: the routing engine would not skip it.
    await h.resources.redis.set(healthKey(b!.id), JSON.stringify({ status: 'UP' }), 'EX', 60);
  });
  afterAll(() => h.stop());

  async function explain(at: string): Promise<Explanation> {
    const res = await h.api(`/routing/explain?destination=%2B${number}&at=${encodeURIComponent(at)}`);
    expect(res.status).toBe(200);
    return (await res.json()) as Explanation;
  }
  const order = (x: Explanation) =>
    x.ranks.map((r) => r.groups.map((g) => g.candidates.map((c) => `${nameOf(c.rule.ruleId)}:${c.share}`).sort()));
  const excluded = (x: Explanation) => Object.fromEntries(x.excluded.map((e) => [nameOf(e.rule.ruleId), e.reason]));

  it('orders the candidates and says why each excluded rule is out', async () => {
    const x = await explain(beforeDst);
    expect(order(x)).toEqual([
      [['longer-worse-priority:1']],
      [['cheap-eur-100:0.25', 'cheap-eur-300:0.75'], ['usd:1']],
      [['dear-eur:1']],
      [['table-worse-priority:1']],
    ]);
    expect(excluded(x)).toEqual({
      'new-york-office-hours': 'outside_weekly_window',
      disabled: 'disabled',
      draining: 'operator_not_active',
    });
    const table = x.ranks[3]?.groups[0]?.candidates[0];
    expect(table).toMatchObject({ health: 'UNKNOWN', skippedNow: true });
    const b = x.ranks[1]?.groups[0]?.candidates.find((c) => nameOf(c.rule.ruleId) === 'cheap-eur-100');
    expect(b).toMatchObject({ health: 'UP', skippedNow: false });
  });

  it('lets the New York window in once its clocks have moved', async () => {
    const x = await explain(afterDst);
    expect(order(x).slice(0, 2)).toEqual([[['longer-worse-priority:1']], [['new-york-office-hours:1']]]);
    expect(excluded(x)).not.toHaveProperty('new-york-office-hours');
  });

  it("gives the same order and exclusions from a routing engine's in-memory index", async () => {
    const internal = await listenInternal(h);
    try {
      const state = new RoutingState(tableLoader(internal.url));
      const res = await fetch(`${internal.url}/routing/snapshot`);
      await state.loadSnapshot(ndjsonRecords<SnapshotRecord>(res.body as unknown as AsyncIterable<Uint8Array>));
      for (const at of [beforeDst, afterDst]) {
        const api = await explain(at);
        const local = state.explain(number, new Date(at));
        expect(
          local.ranks.map((r) =>
            r.groups.map((g) => g.members.map((m) => `${nameOf(m.candidate.ruleId)}:${m.share}`).sort()),
          ),
        ).toEqual(order(api));
        expect(Object.fromEntries(local.excluded.map((e) => [nameOf(e.rule.ruleId), e.reason]))).toEqual(excluded(api));
        // In the same order too: longest matched prefix, priority, rule id (src/domain/route-order.ts).
        expect(local.excluded.map((e) => e.rule.ruleId)).toEqual(api.excluded.map((e) => e.rule.ruleId));
        expect(api.excluded.length).toBeGreaterThan(1);
      }
    } finally {
      await internal.close();
    }
  });

  it('refuses a destination that is not 1 to 15 digits and a time that is not RFC 3339', async () => {
    await expectInvalid(await h.api('/routing/explain?destination=12a'), ['destination']);
    await expectInvalid(await h.api('/routing/explain?destination=1234567890123456'), ['destination']);
    await expectInvalid(await h.api('/routing/explain'), ['destination']);
    await expectInvalid(await h.api(`/routing/explain?destination=${number}&at=yesterday`), ['at']);
  });
});
