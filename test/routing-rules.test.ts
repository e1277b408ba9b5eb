import { randomUUID } from 'node:crypto';
import type { DestinationStream } from 'pino';
import type { EventEnvelope } from '../src/events/envelope';
import { createLogger } from '../src/platform/logger';
import { RoutingRuleService } from '../src/services/routing-rules';
import type { RoutingLintService } from '../src/services/routing-lint';
import { useHarnessWithEvents } from './support/harness';
import { expectInvalid, expectProblem } from './support/problems';
import { onboardActive } from './support/rotation';

/** Routing rules and TPS limits against the real stack: If-Match, atomic sets, events once each, in order. */

interface RuleSet {
  operatorId: string;
  version: number;
  routingRules: Array<Record<string, unknown> & { id: string }>;
}

const rule = (overrides: Record<string, unknown> = {}) => ({
  prefixes: ['2547'],
  priority: 1,
  weight: 100,
  costPerSegment: '0.0125',
  currency: 'EUR',
  ...overrides,
});

describe('routing rules and TPS limits', () => {
  const { h, events } = useHarnessWithEvents();

  async function versionOf(id: string): Promise<number> {
    return ((await (await h().api(`/operators/${id}`)).json()) as { version: number }).version;
  }
  const write = (id: string, path: string, method: string, json: unknown, version: number | string) =>
    h().api(`/operators/${id}${path}`, {
      method,
      json,
      headers: { 'If-Match': typeof version === 'number' ? `"${version}"` : version },
    });

  it('refuses, writing nothing, a rule set whose event would not fit a NATS message', async () => {
    const { id } = await onboardActive(h());
    const before = await versionOf(id);
    // Under the 1 MiB body limit as a request; over the 1,000,000-byte event limit as the event
    // (each rule gains its id, schedule and flags there).
    const routingRules = Array.from({ length: 500 }, (_, n) =>
      rule({
        prefixes: Array.from({ length: 108 }, (_, k) => `2${String(n).padStart(3, '0')}${String(k).padStart(11, '0')}`),
      }),
    );
    expect(JSON.stringify({ routingRules }).length).toBeLessThan(1024 * 1024);
    const refused = await write(id, '/routing-rules', 'PUT', { routingRules }, '*');
    const { body } = await expectProblem(refused, 413);
    expect(body).toMatchObject({ errors: [{ field: 'routingRules' }] });
    expect(await versionOf(id)).toBe(before);
    const { rows } = await h().resources.db.query<{ n: number }>(
      'SELECT max(version)::int AS n FROM ops.event_outbox WHERE operator_id = $1',
      [id],
    );
    expect(rows[0]?.n).toBe(before);
  });

  it('answers a committed write as made, with findings null, when the lint after it fails', async () => {
    const { id } = await onboardActive(h());
    const before = await versionOf(id);
    const warnings: string[] = [];
    const log = createLogger('warn', 'test', {
      write: (line: string) => void warnings.push(line),
    } as DestinationStream);
    const failingLint = {
      lint: () => Promise.reject(new Error('the lint could not run')),
    } as unknown as RoutingLintService;
    const rules = new RoutingRuleService({ db: h().resources.db, lint: failingLint, log });
    const input = {
      prefixes: ['2547'],
      priority: 1,
      weight: 100,
      costPerSegment: '0.0125',
      currency: 'EUR',
      enabled: true,
    };
    const written = await rules.add(id, input, { versions: [before] }, 'test-admin');
    expect(written).toMatchObject({ version: before + 1, findings: null });
    expect(written.routingRules.map((r) => r.id)).toContain(written.ruleId);
    expect(await versionOf(id)).toBe(before + 1);
    expect(warnings.join('')).toContain('routing lint after a committed rule write failed');
  });

  it('adds, changes and deletes rules under If-Match, each one routing_updated with the whole set', async () => {
    const { id } = await onboardActive(h());
    const v0 = await versionOf(id);

    const added = await write(id, '/routing-rules', 'POST', rule({ prefixes: ['+2541', '2541'], priority: 2 }), v0);
    expect(added.status).toBe(201);
    const afterAdd = (await added.json()) as RuleSet;
    expect(afterAdd.version).toBe(v0 + 1);
    expect(afterAdd.routingRules).toHaveLength(2);
    const newId = added.headers.get('location')?.split('/').pop() ?? '';
    expect(afterAdd.routingRules.find((r) => r.id === newId)).toMatchObject({ prefixes: ['2541'], priority: 2 });

    await expectProblem(await write(id, `/routing-rules/${newId}`, 'PATCH', { weight: 5 }, v0), 412);
    await expectProblem(
      await h().api(`/operators/${id}/routing-rules/${newId}`, { method: 'PATCH', json: { weight: 5 } }),
      428,
    );

    const schedule = {
      validFrom: '2026-01-01T00:00:00Z',
      validUntil: '2027-01-01T00:00:00+02:00',
      weekly: {
        timeZone: 'Africa/Nairobi',
        windows: [
          { days: ['mon', 'tue'], start: '08:00', end: '18:30' },
          { days: ['fri'], start: '22:00', end: '06:00' }, // a night: past midnight
        ],
      },
    };
    const patched = await write(id, `/routing-rules/${newId}`, 'PATCH', { weight: 5, ...schedule }, v0 + 1);
    expect(patched.status).toBe(200);
    const afterPatch = (await patched.json()) as RuleSet;
    expect(afterPatch.routingRules.find((r) => r.id === newId)).toMatchObject({
      weight: 5,
      validFrom: '2026-01-01T00:00:00.000Z',
      validUntil: '2026-12-31T22:00:00.000Z',
      weekly: schedule.weekly,
    });

    const switched = await write(id, `/routing-rules/${newId}`, 'PATCH', { prefixTableId: randomUUID() }, v0 + 2);
    await expectInvalid(switched, ['prefixTableId'], 422);

    const deleted = await write(id, `/routing-rules/${newId}`, 'DELETE', undefined, v0 + 2);
    expect(deleted.status).toBe(200);
    expect(((await deleted.json()) as RuleSet).routingRules).toHaveLength(1);
    await expectProblem(await write(id, `/routing-rules/${newId}`, 'DELETE', undefined, v0 + 3), 404);

    const seen = await events().waitFor(
      id,
      (e) => e.filter((x) => x.type === 'operator.config.routing_updated').length >= 3,
    );
    const updates = seen.filter((e) => e.type === 'operator.config.routing_updated');
    expect(updates.map((e) => e.version)).toEqual([v0 + 1, v0 + 2, v0 + 3]);
    expect((updates[2] as EventEnvelope).data).toEqual({
      routingRules: afterAdd.routingRules.filter((r) => r.id !== newId),
    });
  });

  it('replaces the whole set atomically: one bad rule among fifty writes none, publishes nothing, keeps the version', async () => {
    const { id } = await onboardActive(h());
    const v0 = await versionOf(id);
    const fifty = Array.from({ length: 50 }, (_, i) => rule({ prefixes: [String(2540 + i)], priority: i }));
    fifty[37] = rule({ currency: 'XYZ' });
    await expectInvalid(await write(id, '/routing-rules', 'PUT', { routingRules: fifty }, v0), [
      'routingRules[37].currency',
    ]);
    fifty[37] = rule({ prefixTableId: randomUUID(), prefixes: undefined });
    await expectInvalid(
      await write(id, '/routing-rules', 'PUT', { routingRules: fifty }, v0),
      ['routingRules[37].prefixTableId'],
      422,
    );
    expect(await versionOf(id)).toBe(v0);
    const { rows } = await h().resources.db.query(
      `SELECT count(*)::int AS n FROM ops.event_outbox WHERE operator_id = $1 AND subject = 'operator.config.routing_updated'`,
      [id],
    );
    expect(rows[0]).toEqual({ n: 0 });

    fifty[37] = rule({ prefixes: ['2599'] });
    const put = await write(id, '/routing-rules', 'PUT', { routingRules: fifty }, v0);
    expect(put.status).toBe(200);
    expect(put.headers.get('etag')).toBe(`"${v0 + 1}"`);
    const set = (await put.json()) as RuleSet;
    expect(set.routingRules).toHaveLength(50);
    const [event] = (
      await events().waitFor(id, (e) => e.some((x) => x.type === 'operator.config.routing_updated'))
    ).filter((e) => e.type === 'operator.config.routing_updated');
    expect(event).toMatchObject({ version: v0 + 1, data: { routingRules: set.routingRules } });
    // Other files' operators route 2547 too: whatever the lint says must concern these rules.
    const { findings, ...stored } = set as RuleSet & { findings: Array<{ ruleIds: string[]; operatorIds: string[] }> };
    const written = new Set(set.routingRules.map((r) => r.id));
    for (const f of findings) expect(f.ruleIds.some((r) => written.has(r)) || f.operatorIds.includes(id)).toBe(true);
    expect(await (await h().api(`/operators/${id}/routing-rules`)).json()).toEqual(stored);
  });

  it('answers a rule write with the lint findings it causes, as warnings', async () => {
    const { id } = await onboardActive(h());
    const table = (await (
      await h().api('/prefix-tables', { method: 'POST', json: { name: `empty ${randomUUID()}` } })
    ).json()) as {
      id: string;
    };
    const res = await write(
      id,
      '/routing-rules',
      'POST',
      rule({ prefixes: undefined, prefixTableId: table.id }),
      await versionOf(id),
    );
    expect(res.status).toBe(201);
    const ruleId = res.headers.get('location')?.split('/').pop();
    const { findings } = (await res.json()) as { findings: Array<{ kind: string; ruleIds: string[] }> };
    expect(findings).toContainEqual(expect.objectContaining({ kind: 'empty_table', ruleIds: [ruleId] }));
  });

  it('warns when a write leaves an ACTIVE operator without a rule, its last one deleted or its set emptied', async () => {
    const idle = (id: string) => expect.objectContaining({ kind: 'operator_without_enabled_rule', operatorIds: [id] });
    const first = await onboardActive(h());
    const { routingRules } = (await (await h().api(`/operators/${first.id}/routing-rules`)).json()) as RuleSet;
    expect(routingRules.length).toBeGreaterThan(0);
    for (const [i, r] of routingRules.entries()) {
      const res = await write(first.id, `/routing-rules/${r.id}`, 'DELETE', undefined, await versionOf(first.id));
      expect(res.status).toBe(200);
      const { findings } = (await res.json()) as { findings: unknown[] };
      if (i === routingRules.length - 1) expect(findings).toContainEqual(idle(first.id));
      else expect(findings).not.toContainEqual(idle(first.id));
    }
    const second = await onboardActive(h());
    const put = await write(second.id, '/routing-rules', 'PUT', { routingRules: [] }, await versionOf(second.id));
    expect(put.status).toBe(200);
    expect(((await put.json()) as { findings: unknown[] }).findings).toContainEqual(idle(second.id));
  });

  it('reads and replaces the TPS limit under If-Match with tps_updated', async () => {
    const { id } = await onboardActive(h());
    const v0 = await versionOf(id);
    const got = await h().api(`/operators/${id}/tps-limit`);
    expect(got.headers.get('etag')).toBe(`"${v0}"`);
    expect(await got.json()).toMatchObject({ operatorId: id, version: v0, tpsLimit: { tpsCap: 100 } });

    const limit = { tpsCap: 250, burstWindowMs: 2000, enforcementMode: 'monitor' };
    await expectProblem(await write(id, '/tps-limit', 'PUT', limit, v0 - 1), 412);
    const put = await write(id, '/tps-limit', 'PUT', limit, '*');
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ operatorId: id, version: v0 + 1, tpsLimit: limit });
    expect(await (await h().api(`/operators/${id}`)).json()).toMatchObject({ tpsLimit: limit, version: v0 + 1 });
    const [event] = (await events().waitFor(id, (e) => e.some((x) => x.type === 'operator.config.tps_updated'))).filter(
      (e) => e.type === 'operator.config.tps_updated',
    );
    expect(event).toMatchObject({ version: v0 + 1, data: { tpsLimit: limit } });
  });

  describe('refuses bad input with a 4xx naming the field, writing nothing', () => {
    let id: string;
    let version: number;
    beforeAll(async () => {
      ({ id } = await onboardActive(h()));
      version = await versionOf(id);
    });
    afterEach(async () => {
      expect(await versionOf(id)).toBe(version);
    });

    it.each<[string, Record<string, unknown>, string]>([
      ['a non-digit prefix', { prefixes: ['25a7'] }, 'prefixes[0]'],
      ['an empty prefix', { prefixes: [''] }, 'prefixes[0]'],
      ['an empty prefix list', { prefixes: [] }, 'prefixes'],
      ['16 digits', { prefixes: ['1234567890123456'] }, 'prefixes[0]'],
      ['a negative cost', { costPerSegment: '-0.01' }, 'costPerSegment'],
      ['a non-numeric cost', { costPerSegment: 'cheap' }, 'costPerSegment'],
      ['a JSON number as cost', { costPerSegment: 0.01 }, 'costPerSegment'],
      ['more decimals than stored', { costPerSegment: '0.0000001' }, 'costPerSegment'],
      ['an unknown currency', { currency: 'EUX' }, 'currency'],
      ['a weight out of range', { weight: 1001 }, 'weight'],
      ['a negative priority', { priority: -1 }, 'priority'],
      ['a priority out of range', { priority: 10_001 }, 'priority'],
      ['both a table and prefixes', { prefixTableId: randomUUID() }, 'prefixes'],
      [
        'an unknown time zone',
        { weekly: { timeZone: 'Mars/Olympus', windows: [{ days: ['mon'], start: '08:00', end: '09:00' }] } },
        'weekly.timeZone',
      ],
      [
        'a window starting at 24:00',
        { weekly: { timeZone: 'UTC', windows: [{ days: ['mon'], start: '24:00', end: '08:00' }] } },
        'weekly.windows[0].start',
      ],
      [
        'a day twice in one window',
        { weekly: { timeZone: 'UTC', windows: [{ days: ['mon', 'mon'], start: '08:00', end: '09:00' }] } },
        'weekly.windows[0].days',
      ],
      ['a prefix twice as written', { prefixes: ['254', '254'] }, 'prefixes'],
      // PostgreSQL would round it, JavaScript cut it: the two would disagree on validFrom < validUntil.
      ['an instant finer than a millisecond', { validFrom: '2027-01-01T00:00:00.0009996Z' }, 'validFrom'],
    ])('%s', async (_what, overrides, field) => {
      await expectInvalid(await write(id, '/routing-rules', 'POST', rule(overrides), version), [field]);
    });

    it('refuses validUntil before validFrom with a 422 (the schemas cannot say it), also when a PATCH makes it so', async () => {
      const backwards = { validFrom: '2027-01-01T00:00:00Z', validUntil: '2026-01-01T00:00:00Z' };
      await expectInvalid(await write(id, '/routing-rules', 'POST', rule(backwards), version), ['validUntil'], 422);
      const { routingRules } = (await (await h().api(`/operators/${id}/routing-rules`)).json()) as RuleSet;
      const ruleId = routingRules[0]?.id ?? '';
      const patched = await write(
        id,
        `/routing-rules/${ruleId}`,
        'PATCH',
        { validFrom: '2027-01-01T00:00:00Z' },
        version,
      );
      expect(patched.status).toBe(200);
      await expectInvalid(
        await write(id, `/routing-rules/${ruleId}`, 'PATCH', { validUntil: '2026-06-01T00:00:00Z' }, version + 1),
        ['validUntil'],
        422,
      );
      version += 1; // the one write that was meant to land
    });

    it.each<[string, Record<string, unknown>, string]>([
      ['tpsCap 0', { tpsCap: 0, burstWindowMs: 1000, enforcementMode: 'hard' }, 'tpsCap'],
      ['a bad enforcementMode', { tpsCap: 10, burstWindowMs: 1000, enforcementMode: 'drop' }, 'enforcementMode'],
    ])('TPS: %s', async (_what, body, field) => {
      await expectInvalid(await write(id, '/tps-limit', 'PUT', body, version), [field]);
    });
  });
});
