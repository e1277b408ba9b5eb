import type { Operator, OperatorStatus, RoutingRule } from './operator';
import { minutesOf, WEEKDAYS, type WeeklySchedule, type Weekday } from './routing';

/**
 * The route order of README "Route order": which rules are candidates for a number at a time,
 * and how they rank. The admin API's explain, the lint and the consumer helper's in-memory
 * index (src/consumer/) all go through these functions, so they cannot disagree.
 */

/** A rule that has a prefix the number starts with, with its longest such prefix. */
export interface MatchingRule {
  ruleId: string;
  operatorId: string;
  operatorStatus: OperatorStatus;
  /** The longest of the rule's prefixes that the number starts with. */
  matchedPrefix: string;
  priority: number;
  weight: number;
  costPerSegment: string;
  currency: string;
  enabled: boolean;
  validFrom: string | null;
  validUntil: string | null;
  weekly: WeeklySchedule | null;
}

/** A held rule of an operator as it matches a number, with its longest prefix the number starts with. */
export function matchingRule(
  operator: Pick<Operator, 'id' | 'status'>,
  rule: RoutingRule,
  matchedPrefix: string,
): MatchingRule {
  return {
    ruleId: rule.id,
    operatorId: operator.id,
    operatorStatus: operator.status,
    matchedPrefix,
    priority: rule.priority,
    weight: rule.weight,
    costPerSegment: rule.costPerSegment,
    currency: rule.currency,
    enabled: rule.enabled,
    validFrom: rule.validFrom,
    validUntil: rule.validUntil,
    weekly: rule.weekly,
  };
}

export const EXCLUSION_REASONS = [
  'disabled',
  'operator_not_active',
  'not_yet_valid',
  'expired',
  'outside_weekly_window',
] as const;
export type ExclusionReason = (typeof EXCLUSION_REASONS)[number];

/** Why a matching rule is out at `at`, or undefined when it is a candidate. */
export function exclusionOf(rule: MatchingRule, at: Date): ExclusionReason | undefined {
  if (!rule.enabled) return 'disabled';
  if (rule.operatorStatus !== 'ACTIVE') return 'operator_not_active';
  if (rule.validFrom !== null && at.getTime() < Date.parse(rule.validFrom)) return 'not_yet_valid';
  if (rule.validUntil !== null && at.getTime() >= Date.parse(rule.validUntil)) return 'expired';
  if (rule.weekly !== null && !inWeeklyWindow(rule.weekly, at)) return 'outside_weekly_window';
  return undefined;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The weekday and minute of the day at `at` on the wall clocks of `timeZone` (daylight saving included). */
export function localTime(timeZone: string, at: Date): { day: Weekday; minute: number } {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(at).map((p) => [p.type, p.value]));
  const day = WEEKDAYS.find((d) => d === String(parts.weekday).toLowerCase()) ?? 'mon';
  return { day, minute: Number(parts.hour) * 60 + Number(parts.minute) };
}

export function inWeeklyWindow(weekly: WeeklySchedule, at: Date): boolean {
  const { day, minute } = localTime(weekly.timeZone, at);
  return onWallClock(weekly, day, minute);
}

/** Whether the schedule is on at a day and minute of its time zone's wall clock. */
function onWallClock(weekly: WeeklySchedule, day: Weekday, minute: number): boolean {
  const dayBefore = WEEKDAYS[(WEEKDAYS.indexOf(day) + 6) % 7] as Weekday;
  return weekly.windows.some((w) => {
    const start = minutesOf(w.start);
    const end = minutesOf(w.end);
    if (start < end) return w.days.includes(day) && minute >= start && minute < end;
    // Past midnight: the evening of a listed day, or the morning after one.
    return (w.days.includes(day) && minute >= start) || (w.days.includes(dayBefore) && minute < end);
  });
}

/** When a rule may be a candidate: its validity and its weekly windows. */
export type RuleSchedule = Pick<MatchingRule, 'validFrom' | 'validUntil' | 'weekly'>;

const MINUTE_MS = 60_000;
/** Past this span every weekly window has come round (a week, and a day for a window past midnight). */
const WEEK_AND_A_DAY_MS = 8 * 24 * 60 * MINUTE_MS;

/**
 * Whether the rules can both be in their schedules at one instant from `now` on: their validity
 * overlaps after `now`, and their weekly windows meet. Within a common span shorter than a week
 * and a day, minute by minute; over a longer one, windows in one time zone meet when they share
 * a minute of its week, and windows in two zones are taken to meet (telling would take every
 * offset change of both). For the lint, which must not report rules that never meet.
 */
export function schedulesCanMeet(a: RuleSchedule, b: RuleSchedule, now: Date): boolean {
  const from = Math.max(now.getTime(), instant(a.validFrom, -Infinity), instant(b.validFrom, -Infinity));
  const until = Math.min(instant(a.validUntil, Infinity), instant(b.validUntil, Infinity));
  if (from >= until) return false;
  if (until - from < WEEK_AND_A_DAY_MS) return someMinuteOfBoth(a.weekly, b.weekly, from, until);
  if (!a.weekly || !b.weekly) return true; // every schedule has a window, and a week holds it
  if (canonicalZone(a.weekly.timeZone) !== canonicalZone(b.weekly.timeZone)) return true;
  const [weekA, weekB] = [weekOf(a.weekly), weekOf(b.weekly)];
  return weekA.some((on, i) => on === 1 && weekB[i] === 1);
}

/** Whether the rule can be in its schedule at some instant from `now` on. */
export function canBeActiveAgain(rule: RuleSchedule, now: Date): boolean {
  return schedulesCanMeet(rule, { validFrom: null, validUntil: null, weekly: null }, now);
}

function instant(iso: string | null, otherwise: number): number {
  return iso === null ? otherwise : Date.parse(iso);
}

const QUARTER_MS = 15 * MINUTE_MS;
const MINUTES_A_WEEK = 7 * 24 * 60;

/**
 * Whether some minute of [from, until) is in both schedules (none: always). A schedule changes
 * only on a minute, so each minute of the span is looked at, on the wall clock of each zone: read
 * once a quarter of an hour (every offset, and so every change of one, falls on a quarter hour
 * of UTC) and counted on from there.
 */
function someMinuteOfBoth(a: WeeklySchedule | null, b: WeeklySchedule | null, from: number, until: number): boolean {
  const sides = [a, b].flatMap((weekly) => (weekly ? [{ zone: weekly.timeZone, week: weekOf(weekly), base: 0 }] : []));
  let quarter = Number.NaN;
  for (let minute = Math.floor(from / MINUTE_MS) * MINUTE_MS; minute < until; minute += MINUTE_MS) {
    const q = Math.floor(minute / QUARTER_MS) * QUARTER_MS;
    if (q !== quarter) {
      quarter = q;
      for (const side of sides) side.base = weekIndex(localTime(side.zone, new Date(q)));
    }
    const offset = (minute - quarter) / MINUTE_MS;
    if (sides.every((side) => side.week[(side.base + offset) % MINUTES_A_WEEK] === 1)) return true;
  }
  return false;
}

function weekIndex({ day, minute }: { day: Weekday; minute: number }): number {
  return WEEKDAYS.indexOf(day) * 24 * 60 + minute;
}

const weeks = new Map<string, Uint8Array>();

/** The schedule's minutes of the week on its wall clock (1: in a window), made once per schedule. */
function weekOf(weekly: WeeklySchedule): Uint8Array {
  const key = JSON.stringify(weekly.windows);
  let week = weeks.get(key);
  if (!week) {
    week = new Uint8Array(MINUTES_A_WEEK);
    for (const [d, day] of WEEKDAYS.entries()) {
      for (let minute = 0; minute < 24 * 60; minute++)
        week[d * 24 * 60 + minute] = onWallClock(weekly, day, minute) ? 1 : 0;
    }
    // Bounded: schedules are few, but a long-running process must not collect every one it met.
    if (weeks.size >= 1000) weeks.clear();
    weeks.set(key, week);
  }
  return week;
}

const zones = new Map<string, string>();

/** The zone's canonical name: `Europe/Kiev` and `Europe/Kyiv`, `UTC` and `Etc/UTC` are one zone. */
function canonicalZone(timeZone: string): string {
  let zone = zones.get(timeZone);
  if (zone === undefined) {
    zone = new Intl.DateTimeFormat('en-US', { timeZone }).resolvedOptions().timeZone;
    zones.set(timeZone, zone);
  }
  return zone;
}

/**
 * A non-negative decimal string written one way ("0012.50" → "12.5", "0.0" → "0"): equal
 * amounts, equal strings. Money is never a float.
 */
export function canonicalCost(cost: string): string {
  const [int = '0', frac = ''] = cost.split('.');
  const i = int.replace(/^0+(?=.)/, '');
  const f = frac.replace(/0+$/, '');
  return f ? `${i}.${f}` : i;
}

/** Exact comparison of two non-negative decimal strings ("0.0125" < "0.013"). */
export function compareCost(a: string, b: string): number {
  const [ai = '0', af = ''] = canonicalCost(a).split('.');
  const [bi = '0', bf = ''] = canonicalCost(b).split('.');
  if (ai.length !== bi.length) return ai.length - bi.length;
  if (ai !== bi) return ai < bi ? -1 : 1;
  return af === bf ? 0 : af < bf ? -1 : 1;
}

/** Code-point order: the same everywhere, whatever the locale (ids and currency codes are ASCII). */
const byCodePoint = (a: string, b: string) => (a === b ? 0 : a < b ? -1 : 1);

/** Candidates that share traffic: equal on every key, each with its share of the group's weight. */
export interface Group<T> {
  currency: string;
  costPerSegment: string;
  members: Array<{ candidate: T; share: number }>;
}

/** One place in the order. Several groups share a rank only when they differ in currency. */
export interface Rank<T> {
  rank: number;
  prefixLength: number;
  priority: number;
  groups: Group<T>[];
}

/**
 * Orders candidates: longer matched prefix first, then lower priority, then lower cost within
 * one currency. Within a (prefix length, priority) tier each currency's costs are ranked on
 * their own: the cheapest of every currency share the tier's first rank, the next cheapest its
 * second, and so on, since costs in two currencies cannot be compared. Candidates equal on all
 * keys form a group that shares traffic by weight (evenly when every weight is 0).
 */
export function rankCandidates<
  T extends Pick<MatchingRule, 'ruleId' | 'matchedPrefix' | 'priority' | 'costPerSegment' | 'currency' | 'weight'>,
>(candidates: readonly T[]): Rank<T>[] {
  const tiers = new Map<string, T[]>();
  for (const c of candidates) {
    const key = `${c.matchedPrefix.length}|${c.priority}`;
    const tier = tiers.get(key);
    if (tier) tier.push(c);
    else tiers.set(key, [c]);
  }
  const ordered = [...tiers.values()].sort(
    (a, b) => b[0]!.matchedPrefix.length - a[0]!.matchedPrefix.length || a[0]!.priority - b[0]!.priority,
  );
  const ranks: Rank<T>[] = [];
  for (const tier of ordered) {
    // Per currency, per amount (written one way, so equal amounts meet under one key).
    const byCurrency = new Map<string, Map<string, T[]>>();
    for (const c of tier) {
      let costs = byCurrency.get(c.currency);
      if (!costs) byCurrency.set(c.currency, (costs = new Map()));
      const amount = canonicalCost(c.costPerSegment);
      const level = costs.get(amount);
      if (level) level.push(c);
      else costs.set(amount, [c]);
    }
    const levels = [...byCurrency.entries()].map(([currency, costs]) =>
      [...costs.values()]
        .sort((a, b) => compareCost(a[0]!.costPerSegment, b[0]!.costPerSegment))
        .map((members) => group(currency, members[0]!.costPerSegment, members)),
    );
    const depth = Math.max(...levels.map((l) => l.length));
    for (let i = 0; i < depth; i++) {
      ranks.push({
        rank: ranks.length + 1,
        prefixLength: tier[0]!.matchedPrefix.length,
        priority: tier[0]!.priority,
        groups: levels.flatMap((l) => l.slice(i, i + 1)).sort((a, b) => byCodePoint(a.currency, b.currency)),
      });
    }
  }
  return ranks;
}

function group<T extends { weight: number; ruleId: string }>(
  currency: string,
  costPerSegment: string,
  members: T[],
): Group<T> {
  // In rule id order: every reader of the same rules lists a group the same way.
  members = [...members].sort((a, b) => byCodePoint(a.ruleId, b.ruleId));
  const total = members.reduce((sum, m) => sum + m.weight, 0);
  return {
    currency,
    costPerSegment,
    members: members.map((candidate) => ({
      candidate,
      share: total === 0 ? 1 / members.length : candidate.weight / total,
    })),
  };
}

/**
 * How explain lists the matching rules that are out: longest matched prefix first, then by
 * priority, then by rule id (every reader of the same rules lists them the same way).
 */
export function compareExcluded(
  a: Pick<MatchingRule, 'matchedPrefix' | 'priority' | 'ruleId'>,
  b: Pick<MatchingRule, 'matchedPrefix' | 'priority' | 'ruleId'>,
): number {
  return b.matchedPrefix.length - a.matchedPrefix.length || a.priority - b.priority || byCodePoint(a.ruleId, b.ruleId);
}

/** All prefixes a number can match: its first 1, 2, … 15 digits. */
export function prefixesOf(destination: string): string[] {
  return Array.from({ length: destination.length }, (_, i) => destination.slice(0, i + 1));
}
