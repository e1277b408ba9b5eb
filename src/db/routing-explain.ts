import type { Pool, PoolClient } from 'pg';
import type { OperatorStatus } from '../domain/operator';
import type { MatchingRule } from '../domain/route-order';
import type { WeeklySchedule } from '../domain/routing';

/** SQL for route explain: the live rules with a prefix the number starts with. */

export interface ExplainedRule extends MatchingRule {
  operatorName: string;
  /** Inline prefixes, or the table the matched prefix comes from. */
  source: { kind: 'inline' } | { kind: 'table'; prefixTableId: string; prefixTableName: string };
}

interface Row {
  id: string;
  operator_id: string;
  operator_name: string;
  operator_status: OperatorStatus;
  prefix_table_id: string | null;
  prefix_table_name: string | null;
  /** The longest prefix of the number in the rule's table; null for inline prefixes. */
  table_prefix: string | null;
  prefixes: string[] | null;
  priority: number;
  weight: number;
  cost: string;
  currency: string;
  enabled: boolean;
  valid_from: Date | null;
  valid_until: Date | null;
  weekly: WeeklySchedule | null;
}

/**
 * Every live rule of a live operator (ONBOARDING and DRAINING included: explain says why they
 * are out) with one of `prefixes`, each with the longest it has. The statement is the function
 * `ops.routing_rules_matching` (migrations/1764500000000_routing-explain-function.sql), so that
 * PostgreSQL plans it once per connection rather than on every call.
 */
export async function findMatchingRules(db: Pool | PoolClient, prefixes: readonly string[]): Promise<ExplainedRule[]> {
  const { rows } = await db.query<Row>({
    name: 'routing-explain-rules',
    text: 'SELECT * FROM ops.routing_rules_matching($1::text[])',
    values: [prefixes],
  });
  const longestFirst = [...prefixes].sort((a, b) => b.length - a.length);
  return rows.flatMap((r) => {
    if (r.prefix_table_id !== null && r.prefix_table_name === null) return []; // a rule on a deleted table matches nothing
    const matched = r.table_prefix ?? longestFirst.find((p) => r.prefixes?.includes(p));
    if (matched === undefined) return [];
    return [
      {
        ruleId: r.id,
        operatorId: r.operator_id,
        operatorName: r.operator_name,
        operatorStatus: r.operator_status,
        matchedPrefix: matched,
        source:
          r.prefix_table_id !== null && r.prefix_table_name !== null
            ? { kind: 'table' as const, prefixTableId: r.prefix_table_id, prefixTableName: r.prefix_table_name }
            : { kind: 'inline' as const },
        priority: r.priority,
        weight: r.weight,
        costPerSegment: trimCost(r.cost),
        currency: r.currency,
        enabled: r.enabled,
        validFrom: r.valid_from?.toISOString() ?? null,
        validUntil: r.valid_until?.toISOString() ?? null,
        weekly: r.weekly,
      },
    ];
  });
}

/** numeric(14, 6) prints six decimals; the rule keeps the amount as it was given, minus trailing zeros. */
export function trimCost(stored: string): string {
  return stored.includes('.') ? stored.replace(/\.?0+$/, '') : stored;
}
