import { schedulesCanMeet, type RuleSchedule } from './route-order';

/**
 * Routing lint (GET /v1/admin/routing/lint): configurations that route differently from what
 * their author most likely meant, judged by the route order of README "Routing configuration".
 * The order of LINT_KINDS is the order findings are listed in.
 */

export const LINT_KINDS = [
  /** Every prefix of the rule is always won by a rule ranked ahead: it can never carry traffic. */
  'shadowed',
  /** Two enabled rules of one operator share a prefix at the same priority, and their schedules meet. */
  'duplicate_prefix_priority',
  /** Rules that can meet share a prefix and a priority in different currencies: costs cannot rank them. */
  'mixed_currency_rank',
  /** The rule's prefix table has no entries: it matches no number. */
  'empty_table',
  /** The rule's validity ended, or none of its weekly windows comes before it ends. */
  'never_active_again',
  /** An ACTIVE operator that no enabled rule routes to. */
  'operator_without_enabled_rule',
] as const;

export type LintKind = (typeof LINT_KINDS)[number];

export interface LintFinding {
  kind: LintKind;
  /** The rules concerned, sorted; empty for an operator-level finding. */
  ruleIds: string[];
  /** The operators of those rules (or the operator concerned), sorted. */
  operatorIds: string[];
  /** One English sentence naming the rules and, where one is involved, a prefix. */
  message: string;
}

/** A rule as the lint's schedule checks see it. */
export type ScheduledRule = RuleSchedule & { currency: string; operatorId: string };

/**
 * Which rules compete, for the kinds about rules that share a prefix (duplicate priority, mixed
 * currencies): only those whose schedules let them meet from `now` on (a rate deck and its
 * successor, or day and night windows, do not). Many rules share a few schedules: each pair of
 * schedules is judged once.
 */
export class CompetingRules {
  private readonly keys = new Map<string, string>();
  private readonly judged = new Map<string, boolean>();

  constructor(
    private readonly rules: ReadonlyMap<string, ScheduledRule>,
    private readonly now: Date,
  ) {
    for (const [id, r] of rules) this.keys.set(id, JSON.stringify([r.validFrom, r.validUntil, r.weekly]));
  }

  /** Whether the two rules can be candidates at one instant. */
  meet(a: string, b: string): boolean {
    const [x, y] = [this.rules.get(a), this.rules.get(b)];
    if (x === undefined || y === undefined) return false;
    const key = `${this.keys.get(a)}|${this.keys.get(b)}`;
    let answer = this.judged.get(key);
    if (answer === undefined) {
      answer = schedulesCanMeet(x, y, this.now);
      this.judged.set(key, answer);
    }
    return answer;
  }

  /**
   * The rules of `ruleIds` that can meet a rule of another currency among them, sorted. Rules of
   * one currency with one schedule stand or fall together, so one of them stands for all: a group
   * on a shared table can hold thousands.
   */
  meetingAcrossCurrencies(ruleIds: readonly string[]): string[] {
    const alike = new Map<string, { currency: string; members: string[] }>();
    for (const id of ruleIds) {
      const rule = this.rules.get(id);
      if (!rule) continue;
      const kind = `${rule.currency}|${this.keys.get(id)}`;
      const group = alike.get(kind);
      if (group) group.members.push(id);
      else alike.set(kind, { currency: rule.currency, members: [id] });
    }
    const groups = [...alike.values()];
    return groups
      .filter((a) => groups.some((b) => a.currency !== b.currency && this.meet(a.members[0]!, b.members[0]!)))
      .flatMap((a) => a.members)
      .sort();
  }

  /** Of the rules given, the distinct values of `pick`, sorted. */
  distinct(ruleIds: readonly string[], pick: (rule: ScheduledRule) => string): string[] {
    return [...new Set(ruleIds.flatMap((id) => (this.rules.has(id) ? [pick(this.rules.get(id)!)] : [])))].sort();
  }
}
