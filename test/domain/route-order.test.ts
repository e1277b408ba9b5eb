import {
  canBeActiveAgain,
  compareCost,
  exclusionOf,
  inWeeklyWindow,
  prefixesOf,
  rankCandidates,
  schedulesCanMeet,
  type MatchingRule,
  type RuleSchedule,
} from '../../src/domain/route-order';
import { WEEKDAYS, type Weekday } from '../../src/domain/routing';

/** The route order's pure rules: cost comparison, schedules across daylight saving, ranks and shares. */

const rule = (id: string, overrides: Partial<MatchingRule> = {}): MatchingRule => ({
  ruleId: id,
  operatorId: `op-${id}`,
  operatorStatus: 'ACTIVE',
  matchedPrefix: '2547',
  priority: 1,
  weight: 100,
  costPerSegment: '0.01',
  currency: 'EUR',
  enabled: true,
  validFrom: null,
  validUntil: null,
  weekly: null,
  ...overrides,
});

describe('route order', () => {
  it.each([
    ['0.0125', '0.013', -1],
    ['0.01', '0.010000', 0],
    ['10', '9.999999', 1],
    ['007.5', '7.50', 0],
    ['0', '0.000001', -1],
  ])('compares %s and %s exactly', (a, b, sign) => {
    expect(Math.sign(compareCost(a, b))).toBe(sign);
  });

  it('lists the prefixes a number can match', () => {
    expect(prefixesOf('2547')).toEqual(['2', '25', '254', '2547']);
  });

  it('follows daylight saving in the window time zone', () => {
    const weekly = {
      timeZone: 'America/New_York',
      windows: [{ days: ['mon' as const, 'sat' as const], start: '09:00', end: '17:00' }],
    };
    // Saturday 2026-03-07 13:30Z is 08:30 EST; Monday 2026-03-09 13:30Z is 09:30 EDT (clocks moved on the 8th).
    expect(inWeeklyWindow(weekly, new Date('2026-03-07T13:30:00Z'))).toBe(false);
    expect(inWeeklyWindow(weekly, new Date('2026-03-09T13:30:00Z'))).toBe(true);
    expect(inWeeklyWindow(weekly, new Date('2026-03-09T21:00:00Z'))).toBe(false); // 17:00 EDT: end is exclusive
    expect(
      inWeeklyWindow(
        { timeZone: 'UTC', windows: [{ days: ['sun'], start: '00:00', end: '24:00' }] },
        new Date('2026-03-08T23:59:00Z'),
      ),
    ).toBe(true);
  });

  it('runs a window whose end is at or before its start past midnight', () => {
    const night = { timeZone: 'UTC', windows: [{ days: ['fri' as const], start: '22:00', end: '06:00' }] };
    expect(inWeeklyWindow(night, new Date('2026-03-06T21:59:00Z'))).toBe(false); // Friday, before the start
    expect(inWeeklyWindow(night, new Date('2026-03-06T22:00:00Z'))).toBe(true);
    expect(inWeeklyWindow(night, new Date('2026-03-07T05:59:00Z'))).toBe(true); // Saturday morning
    expect(inWeeklyWindow(night, new Date('2026-03-07T06:00:00Z'))).toBe(false);
    expect(inWeeklyWindow(night, new Date('2026-03-05T23:00:00Z'))).toBe(false); // Thursday night
    const fullDay = { timeZone: 'UTC', windows: [{ days: ['mon' as const], start: '08:00', end: '08:00' }] };
    expect(inWeeklyWindow(fullDay, new Date('2026-03-09T07:59:00Z'))).toBe(false);
    expect(inWeeklyWindow(fullDay, new Date('2026-03-10T07:59:00Z'))).toBe(true);
    expect(inWeeklyWindow(fullDay, new Date('2026-03-10T08:00:00Z'))).toBe(false);
  });

  it('ends a night window on the wall clock across a daylight-saving change', () => {
    // New York moves to EDT at 02:00 on Sunday 2026-03-08: the night is one hour shorter.
    const night = { timeZone: 'America/New_York', windows: [{ days: ['sat' as const], start: '22:00', end: '06:00' }] };
    expect(inWeeklyWindow(night, new Date('2026-03-08T03:00:00Z'))).toBe(true); // 22:00 EST
    expect(inWeeklyWindow(night, new Date('2026-03-08T09:59:00Z'))).toBe(true); // 05:59 EDT
    expect(inWeeklyWindow(night, new Date('2026-03-08T10:00:00Z'))).toBe(false); // 06:00 EDT
  });

  it('says why a matching rule is out, in order of the checks', () => {
    const at = new Date('2026-06-01T12:00:00Z');
    expect(exclusionOf(rule('a', { enabled: false, operatorStatus: 'DRAINING' }), at)).toBe('disabled');
    expect(exclusionOf(rule('a', { operatorStatus: 'DRAINING' }), at)).toBe('operator_not_active');
    expect(exclusionOf(rule('a', { validFrom: '2026-06-01T12:00:01Z' }), at)).toBe('not_yet_valid');
    expect(exclusionOf(rule('a', { validUntil: '2026-06-01T12:00:00Z' }), at)).toBe('expired');
    const closed = { timeZone: 'Asia/Tokyo', windows: [{ days: ['mon' as const], start: '08:00', end: '09:00' }] };
    expect(exclusionOf(rule('a', { weekly: closed }), at)).toBe('outside_weekly_window');
    expect(
      exclusionOf(rule('a', { validFrom: '2026-01-01T00:00:00Z', validUntil: '2027-01-01T00:00:00Z' }), at),
    ).toBeUndefined();
  });

  it('ranks by prefix length, then priority, then cost within one currency, and shares a group by weight', () => {
    const ranks = rankCandidates([
      rule('short-best', { matchedPrefix: '254', priority: 0, costPerSegment: '0.001' }),
      rule('long-worst', { matchedPrefix: '25471', priority: 9, costPerSegment: '0.5' }),
      rule('eur-cheap-a', { weight: 100 }),
      rule('eur-cheap-b', { weight: 300, costPerSegment: '0.010' }),
      rule('eur-dear', { costPerSegment: '0.02' }),
      rule('usd', { currency: 'USD', costPerSegment: '0.5' }),
      rule('worse-priority', { priority: 2, costPerSegment: '0' }),
    ]);
    const shape = ranks.map((r) => r.groups.map((g) => g.members.map((m) => `${m.candidate.ruleId}:${m.share}`)));
    expect(shape).toEqual([
      [['long-worst:1']],
      [['eur-cheap-a:0.25', 'eur-cheap-b:0.75'], ['usd:1']],
      [['eur-dear:1']],
      [['worse-priority:1']],
      [['short-best:1']],
    ]);
    expect(ranks.map((r) => r.rank)).toEqual([1, 2, 3, 4, 5]);
  });

  it('shares evenly when every weight of a group is 0', () => {
    const [first] = rankCandidates([rule('a', { weight: 0 }), rule('b', { weight: 0 })]);
    expect(first?.groups[0]?.members.map((m) => m.share)).toEqual([0.5, 0.5]);
  });
});

describe('schedules that can meet (the lint)', () => {
  const NOW = new Date('2026-06-01T12:00:00Z'); // a Monday
  const always: RuleSchedule = { validFrom: null, validUntil: null, weekly: null };
  const valid = (validFrom: string | null, validUntil: string | null): RuleSchedule => ({
    ...always,
    validFrom,
    validUntil,
  });
  const daily = (timeZone: string, start: string, end: string, days: Weekday[] = [...WEEKDAYS]): RuleSchedule => ({
    ...always,
    weekly: { timeZone, windows: [{ days, start, end }] },
  });

  it('does not pair a rate deck with its successor, nor rules whose common span is past', () => {
    const old = valid(null, '2026-07-01T00:00:00Z');
    const successor = valid('2026-07-01T00:00:00Z', null);
    expect(schedulesCanMeet(old, successor, NOW)).toBe(false);
    expect(schedulesCanMeet(valid(null, '2026-06-15T00:00:00Z'), valid('2026-06-14T23:59:00Z', null), NOW)).toBe(true);
    expect(schedulesCanMeet(valid(null, '2026-05-01T00:00:00Z'), always, NOW)).toBe(false);
    expect(schedulesCanMeet(always, always, NOW)).toBe(true);
  });

  it('does not pair day and night windows in one time zone, and pairs windows that share a minute', () => {
    const day = daily('Africa/Nairobi', '08:00', '20:00');
    const night = daily('Africa/Nairobi', '20:00', '08:00');
    expect(schedulesCanMeet(day, night, NOW)).toBe(false);
    expect(schedulesCanMeet(day, daily('Africa/Nairobi', '19:59', '21:00'), NOW)).toBe(true);
    // The same hours in two zones three hours apart do meet.
    expect(schedulesCanMeet(day, daily('UTC', '20:00', '08:00'), NOW)).toBe(true);
  });

  it('takes a zone and its alias for one zone, and runs a window past midnight into the next day', () => {
    expect(schedulesCanMeet(daily('Europe/Kiev', '08:00', '20:00'), daily('Europe/Kyiv', '20:00', '08:00'), NOW)).toBe(
      false,
    );
    expect(schedulesCanMeet(daily('UTC', '08:00', '20:00'), daily('Etc/UTC', '20:00', '08:00'), NOW)).toBe(false);
    const sundayNight = daily('UTC', '22:00', '02:00', ['sun']);
    expect(schedulesCanMeet(sundayNight, daily('UTC', '01:00', '03:00', ['mon']), NOW)).toBe(true);
    expect(schedulesCanMeet(sundayNight, daily('UTC', '02:00', '03:00', ['mon']), NOW)).toBe(false);
  });

  it("counts each zone's wall clock within a short common span", () => {
    // Valid for two days from Monday noon UTC. Nairobi (UTC+3) 22:00–23:00 is 19:00–20:00 UTC.
    const span = { validFrom: '2026-06-01T12:00:00Z', validUntil: '2026-06-03T12:00:00Z' };
    const nairobi = { ...daily('Africa/Nairobi', '22:00', '23:00'), ...span };
    expect(schedulesCanMeet(nairobi, daily('UTC', '19:45', '19:50'), NOW)).toBe(true);
    expect(schedulesCanMeet(nairobi, daily('UTC', '20:00', '21:00'), NOW)).toBe(false);
    // New York on the day its clocks go back (2026-11-01): 01:30 happens twice, at 05:30 and 06:30 UTC.
    const fallBack = {
      ...daily('America/New_York', '01:30', '01:31'),
      validFrom: '2026-11-01T00:00:00Z',
      validUntil: '2026-11-02T00:00:00Z',
    };
    expect(schedulesCanMeet(fallBack, daily('UTC', '06:30', '06:31'), NOW)).toBe(true);
    expect(schedulesCanMeet(fallBack, daily('UTC', '06:00', '06:01'), NOW)).toBe(false);
  });

  it('looks minute by minute within a short common span, whatever the zones', () => {
    // Valid Monday noon to Friday midnight UTC, windows on the weekend only: never on.
    const weekendOnly = {
      ...daily('UTC', '00:00', '24:00', ['sat', 'sun']),
      validFrom: '2026-06-01T12:00:00Z',
      validUntil: '2026-06-05T00:00:00Z',
    };
    expect(canBeActiveAgain(weekendOnly, NOW)).toBe(false);
    expect(canBeActiveAgain({ ...weekendOnly, validUntil: '2026-06-06T00:01:00Z' }, NOW)).toBe(true);
    // Nairobi (UTC+3) Friday 22:00–23:00 is 19:00–20:00 UTC: in a span ending Friday 19:30 UTC.
    const friday = daily('Africa/Nairobi', '22:00', '23:00', ['fri']);
    expect(schedulesCanMeet(friday, valid(null, '2026-06-05T19:30:00Z'), NOW)).toBe(true);
    expect(schedulesCanMeet(friday, valid(null, '2026-06-05T19:00:00Z'), NOW)).toBe(false);
  });

  it('judges a rule with no schedule, or one valid long enough, active again until it expires', () => {
    expect(canBeActiveAgain(always, NOW)).toBe(true);
    expect(canBeActiveAgain(valid(null, '2026-06-01T12:00:00Z'), NOW)).toBe(false);
    expect(
      canBeActiveAgain({ ...daily('UTC', '00:00', '01:00', ['sun']), validUntil: '2026-06-10T00:00:00Z' }, NOW),
    ).toBe(true);
  });
});
