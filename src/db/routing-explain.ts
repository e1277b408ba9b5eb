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
 * are out) with one of `prefixes`, each with the longest it has. Two plain index lookups rather
 * than one clever query: the tables holding one of the prefixes (entries by prefix), then the
 * rules on those tables or listing one of the prefixes inline (a bitmap OR of two indexes).
 */
export async function findMatchingRules(db: Pool | PoolClient, prefixes: readonly string[]): Promise<ExplainedRule[]> {
  const { rows: hits } = await db.query<{ prefix_table_id: string; prefix: string }>({
    name: 'routing-explain-tables',
    text: `SELECT DISTINCT ON (e.prefix_table_id) e.prefix_table_id, e.prefix
             FROM ops.prefix_table_entries e
            WHERE e.deleted_at IS NULL AND e.prefix = ANY($1::text[])
            ORDER BY e.prefix_table_id, length(e.prefix) DESC`,
    values: [prefixes],
  });
  const tables = new Map(hits.map((h) => [h.prefix_table_id, h]));
  const { rows } = await db.query<Row>({
    name: 'routing-explain-rules',
    text: `SELECT r.id, r.operator_id, o.name AS operator_name, o.status AS operator_status, r.prefix_table_id,
                  r.prefixes, r.priority, r.weight, r.cost_per_segment::text AS cost, r.currency, r.enabled,
                  r.valid_from, r.valid_until, r.weekly, t.name AS prefix_table_name
             FROM ops.routing_rules r
             JOIN ops.operators o ON o.id = r.operator_id AND o.deleted_at IS NULL
                                 AND o.status NOT IN ('ONBOARDING_FAILED', 'DELETED')
             LEFT JOIN ops.prefix_tables t ON t.id = r.prefix_table_id AND t.deleted_at IS NULL
            WHERE r.deleted_at IS NULL AND (r.prefix_table_id = ANY($1::uuid[]) OR r.prefixes && $2::text[])
            ORDER BY r.id`,
    values: [[...tables.keys()], prefixes],
  });
  const longestFirst = [...prefixes].sort((a, b) => b.length - a.length);
  return rows.flatMap((r) => {
    // A rule on a deleted table matches nothing.
    const table = r.prefix_table_id && r.prefix_table_name !== null ? tables.get(r.prefix_table_id) : undefined;
    const matched = r.prefix_table_id ? table?.prefix : longestFirst.find((p) => r.prefixes?.includes(p));
    if (matched === undefined) return [];
    return [
      {
        ruleId: r.id,
        operatorId: r.operator_id,
        operatorName: r.operator_name,
        operatorStatus: r.operator_status,
        matchedPrefix: matched,
        source:
          table && r.prefix_table_name !== null
            ? { kind: 'table' as const, prefixTableId: table.prefix_table_id, prefixTableName: r.prefix_table_name }
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
