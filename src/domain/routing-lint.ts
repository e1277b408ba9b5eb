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
