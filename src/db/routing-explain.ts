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
  matched: string;
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
 * are out) with one of `prefixes`, each with the longest it has. Both lookups use an index: the
 * inline arrays by overlap, the tables by prefix.
 */
export async function findMatchingRules(db: Pool | PoolClient, prefixes: readonly string[]): Promise<ExplainedRule[]> {
  // Not a named statement: a generic plan, made once for any array, reads the entries table
  // whole; the plan for the number's own prefixes probes two indexes.
  const { rows } = await db.query<Row>({
    text: `
      WITH hits AS (
        SELECT r.id, (SELECT x FROM unnest(r.prefixes) x WHERE x = ANY($1) ORDER BY length(x) DESC LIMIT 1) AS matched
          FROM ops.routing_rules r
         WHERE r.deleted_at IS NULL AND r.prefixes && $1::text[]
        UNION ALL
        SELECT r.id, m.prefix
          FROM (SELECT DISTINCT ON (e.prefix_table_id) e.prefix_table_id, e.prefix
                  FROM ops.prefix_table_entries e
                 WHERE e.deleted_at IS NULL AND e.prefix = ANY($1)
                 ORDER BY e.prefix_table_id, length(e.prefix) DESC) m
          JOIN ops.routing_rules r ON r.prefix_table_id = m.prefix_table_id AND r.deleted_at IS NULL
          JOIN ops.prefix_tables t ON t.id = m.prefix_table_id AND t.deleted_at IS NULL)
      SELECT r.id, r.operator_id, o.name AS operator_name, o.status AS operator_status, r.prefix_table_id,
             t.name AS prefix_table_name, h.matched, r.priority, r.weight, r.cost_per_segment::text AS cost,
             r.currency, r.enabled, r.valid_from, r.valid_until, r.weekly
        FROM hits h
        JOIN ops.routing_rules r ON r.id = h.id
        JOIN ops.operators o ON o.id = r.operator_id AND o.deleted_at IS NULL
                            AND o.status NOT IN ('ONBOARDING_FAILED', 'DELETED')
        LEFT JOIN ops.prefix_tables t ON t.id = r.prefix_table_id
       ORDER BY r.id`,
    values: [prefixes],
  });
  return rows.map((r) => ({
    ruleId: r.id,
    operatorId: r.operator_id,
    operatorName: r.operator_name,
    operatorStatus: r.operator_status,
    matchedPrefix: r.matched,
    source:
      r.prefix_table_id && r.prefix_table_name !== null
        ? { kind: 'table', prefixTableId: r.prefix_table_id, prefixTableName: r.prefix_table_name }
        : { kind: 'inline' },
    priority: r.priority,
    weight: r.weight,
    costPerSegment: trimCost(r.cost),
    currency: r.currency,
    enabled: r.enabled,
    validFrom: r.valid_from?.toISOString() ?? null,
    validUntil: r.valid_until?.toISOString() ?? null,
    weekly: r.weekly,
  }));
}

/** numeric(14, 6) prints six decimals; the rule keeps the amount as it was given, minus trailing zeros. */
export function trimCost(stored: string): string {
  return stored.includes('.') ? stored.replace(/\.?0+$/, '') : stored;
}
