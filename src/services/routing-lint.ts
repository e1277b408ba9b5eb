import type { Db } from '../clients/postgres';
import {
  findDuplicatePrefixPriorities,
  findEmptyTableRules,
  findExpiredRules,
  findMixedCurrencyRanks,
  findOperatorsWithoutEnabledRule,
  findRuleSchedules,
  findShadowedRules,
  findWeeklyRulesEndingSoon,
  withLintScratch,
  type LintScope,
} from '../db/routing-lint';
import { canBeActiveAgain } from '../domain/route-order';
import { CompetingRules, LINT_KINDS, type LintFinding } from '../domain/routing-lint';

/**
 * GET /routing/lint: rules that can never carry traffic or rank as their author likely meant,
 * and ACTIVE operators that nothing routes to (src/domain/routing-lint.ts lists the kinds).
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface LintOptions {
  /** Only findings that involve one of these rules (for operator findings: their operators). */
  ruleIds?: readonly string[];
  /** With `ruleIds`: also the findings about these operators (one whose last rule went has none in scope). */
  operatorIds?: readonly string[];
  /** The instant `never_active_again` is judged at; defaults to the current time. */
  now?: Date;
}

export class RoutingLintService {
  constructor(private readonly deps: { db: Db }) {}

  async lint(options: LintOptions = {}): Promise<LintFinding[]> {
    // A string that is no UUID names no rule; PostgreSQL would refuse the whole uuid[] for it.
    const scope: LintScope = options.ruleIds ? options.ruleIds.filter((id) => UUID.test(id)) : null;
    const operators = (options.operatorIds ?? []).filter((id) => UUID.test(id));
    if (scope && scope.length === 0 && operators.length === 0) return [];
    const now = options.now ?? new Date();
    const read = await withLintScratch(this.deps.db, async (s) => {
      // One connection, one statement at a time: the kinds run one after the other.
      const shadowed = await findShadowedRules(s, scope);
      const sharing = await findDuplicatePrefixPriorities(s, scope);
      const sharingCurrencies = await findMixedCurrencyRanks(s, scope, now);
      const empty = await findEmptyTableRules(s, scope);
      const expired = await findExpiredRules(s, scope, now);
      const endingSoon = await findWeeklyRulesEndingSoon(s, scope, now);
      const idle = await findOperatorsWithoutEnabledRule(s, scope, operators);
      const schedules = await findRuleSchedules(s, [
        ...sharing.flatMap((d) => d.ruleIds),
        ...sharingCurrencies.flatMap((m) => m.ruleIds),
      ]);
      return { shadowed, sharing, sharingCurrencies, empty, expired, endingSoon, idle, schedules };
    });
    // Judged once the snapshot's transaction is over (it would idle meanwhile).
    const { shadowed, sharing, sharingCurrencies, empty, expired, endingSoon, idle } = read;
    const competing = new CompetingRules(read.schedules, now);
    const inScope = scope && new Set(scope);
    const duplicates = sharing.filter((d) => competing.meet(...d.ruleIds));
    const mixed = sharingCurrencies.flatMap((group) => {
      const members = competing.meetingAcrossCurrencies(group.ruleIds);
      if (members.length === 0 || (inScope && !members.some((id) => inScope.has(id)))) return [];
      const operatorIds = competing.distinct(members, (r) => r.operatorId);
      return [{ ...group, ruleIds: members, operatorIds, currencies: competing.distinct(members, (r) => r.currency) }];
    });
    const outOfWindows = endingSoon.filter((r) => !canBeActiveAgain(r, now));
    const findings: LintFinding[] = [
      ...shadowed.map((r): LintFinding => ({
        kind: 'shadowed',
        ruleIds: [r.ruleId],
        operatorIds: [r.operatorId],
        message: `Rule ${r.ruleId} is shadowed: each of its prefixes is always won by a rule ranked ahead of it (prefix ${r.prefix}, for one, by rule ${r.byRuleId}).`,
      })),
      ...duplicates.map((r): LintFinding => ({
        kind: 'duplicate_prefix_priority',
        ruleIds: [...r.ruleIds],
        operatorIds: [r.operatorId],
        message: `Rules ${r.ruleIds[0]} and ${r.ruleIds[1]} of operator ${r.operatorId} both have prefix ${r.prefix} at priority ${r.priority}.`,
      })),
      ...mixed.map((r): LintFinding => ({
        kind: 'mixed_currency_rank',
        ruleIds: r.ruleIds,
        operatorIds: r.operatorIds,
        message: `Rules ${r.ruleIds.join(', ')} share ${countOf(r.prefixCount, 'prefix', 'prefixes')} (${r.prefix}, for one) at priority ${r.priority} in ${r.currencies.join(' and ')}, so their costs cannot be compared and they keep equal rank.`,
      })),
      ...empty.map((r): LintFinding => ({
        kind: 'empty_table',
        ruleIds: [r.ruleId],
        operatorIds: [r.operatorId],
        message: `Rule ${r.ruleId} uses prefix table ${r.prefixTableId}, which has no entries, so it matches no number.`,
      })),
      ...expired.map((r): LintFinding => ({
        kind: 'never_active_again',
        ruleIds: [r.ruleId],
        operatorIds: [r.operatorId],
        message: `Rule ${r.ruleId} was valid until ${r.validUntil}, so it can never be active again.`,
      })),
      ...outOfWindows.map((r): LintFinding => ({
        kind: 'never_active_again',
        ruleIds: [r.ruleId],
        operatorIds: [r.operatorId],
        message: `Rule ${r.ruleId} is valid until ${r.validUntil ?? ''}, and none of its weekly windows comes before then, so it can never be active again.`,
      })),
      ...idle.map((operatorId): LintFinding => ({
        kind: 'operator_without_enabled_rule',
        ruleIds: [],
        operatorIds: [operatorId],
        message: `Operator ${operatorId} is ACTIVE but has no enabled routing rule, so no traffic is routed to it.`,
      })),
    ];
    return findings.sort(byKindThenRule);
  }
}

function countOf(n: number, one: string, many: string): string {
  return n === 1 ? `1 ${one}` : `${n} ${many}`;
}

/** Kind (in LINT_KINDS order), first rule id, then first operator id: the same order on every call. */
function byKindThenRule(a: LintFinding, b: LintFinding): number {
  return (
    LINT_KINDS.indexOf(a.kind) - LINT_KINDS.indexOf(b.kind) ||
    compare(a.ruleIds[0] ?? '', b.ruleIds[0] ?? '') ||
    compare(a.operatorIds[0] ?? '', b.operatorIds[0] ?? '') ||
    compare(a.message, b.message)
  );
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
