import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import type { RoutingRule, RoutingRuleInput } from '../domain/operator';
import type { WeeklySchedule } from '../domain/routing';

/** SQL for an operator's routing rules. Every read excludes soft-deleted rows. */

type Queryable = Pool | PoolClient;

/** A rules row as RULE_COLUMNS reads it. */
export interface RuleRow {
  id: string;
  prefix_table_id: string | null;
  prefixes: string[] | null;
  priority: number;
  weight: number;
  cost_per_segment: string;
  currency: string;
  enabled: boolean;
  valid_from: Date | null;
  valid_until: Date | null;
  weekly: WeeklySchedule | null;
}

/** The columns of a RuleRow, of ops.routing_rules as `r`. */
export const RULE_COLUMNS = `r.id, r.prefix_table_id, r.prefixes, r.priority, r.weight, r.cost_per_segment::text,
                             r.currency, r.enabled, r.valid_from, r.valid_until, r.weekly`;

export function toRule(r: RuleRow): RoutingRule {
  return {
    id: r.id,
    ...(r.prefix_table_id ? { prefixTableId: r.prefix_table_id } : { prefixes: r.prefixes ?? [] }),
    priority: r.priority,
    weight: r.weight,
    costPerSegment: trimCost(r.cost_per_segment),
    currency: r.currency,
    enabled: r.enabled,
    validFrom: r.valid_from?.toISOString() ?? null,
    validUntil: r.valid_until?.toISOString() ?? null,
    weekly: r.weekly,
  };
}

/** The operator's live rules, in a stable order (priority, then id). */
export async function listRoutingRules(db: Queryable, operatorId: string): Promise<RoutingRule[]> {
  const { rows } = await db.query<RuleRow>(
    `SELECT ${RULE_COLUMNS} FROM ops.routing_rules r WHERE r.operator_id = $1 AND r.deleted_at IS NULL ORDER BY r.priority, r.id`,
    [operatorId],
  );
  return rows.map(toRule);
}

/** The live rules of every live operator, by operator, each set in the order of listRoutingRules. */
export async function listRulesOfLiveOperators(db: Queryable): Promise<Map<string, RoutingRule[]>> {
  const { rows } = await db.query<RuleRow & { operator_id: string }>(
    `SELECT r.operator_id, ${RULE_COLUMNS}
       FROM ops.routing_rules r JOIN ops.operators o ON o.id = r.operator_id
      WHERE r.deleted_at IS NULL AND o.deleted_at IS NULL AND o.status NOT IN ('ONBOARDING_FAILED', 'DELETED')
      ORDER BY r.operator_id, r.priority, r.id`,
  );
  const byOperator = new Map<string, RoutingRule[]>();
  for (const row of rows) byOperator.set(row.operator_id, [...(byOperator.get(row.operator_id) ?? []), toRule(row)]);
  return byOperator;
}

/** Inserts rules for the operator in one statement; returns their ids in the order given. */
export async function insertRoutingRules(
  tx: PoolClient,
  operatorId: string,
  rules: readonly RoutingRuleInput[],
  actor: string,
): Promise<string[]> {
  const ids = rules.map(() => randomUUID());
  if (rules.length === 0) return ids;
  await tx.query(
    `INSERT INTO ops.routing_rules (id, operator_id, prefix_table_id, prefixes, priority, weight, cost_per_segment,
                                    currency, enabled, valid_from, valid_until, weekly, created_by, updated_by)
     SELECT r.id, $1, r.prefix_table_id, r.prefixes, r.priority, r.weight, r.cost, r.currency, r.enabled,
            r.valid_from, r.valid_until, r.weekly, $2, $2
       FROM jsonb_to_recordset($3::jsonb) AS r(id uuid, prefix_table_id uuid, prefixes text[], priority int, weight int,
                                              cost numeric, currency text, enabled boolean, valid_from timestamptz,
                                              valid_until timestamptz, weekly jsonb)`,
    [
      operatorId,
      actor,
      JSON.stringify(
        rules.map((rule, i) => ({
          id: ids[i],
          prefix_table_id: rule.prefixTableId ?? null,
          prefixes: rule.prefixes ?? null,
          priority: rule.priority,
          weight: rule.weight,
          cost: rule.costPerSegment,
          currency: rule.currency,
          enabled: rule.enabled,
          valid_from: rule.validFrom ?? null,
          valid_until: rule.validUntil ?? null,
          weekly: rule.weekly ?? null,
        })),
      ),
    ],
  );
  return ids;
}

/** Replaces one live rule by a new version of it (same id): soft delete would change its id. */
export async function updateRoutingRule(
  tx: PoolClient,
  operatorId: string,
  ruleId: string,
  rule: RoutingRuleInput,
  actor: string,
): Promise<boolean> {
  const { rowCount } = await tx.query(
    `UPDATE ops.routing_rules
        SET prefix_table_id = $3, prefixes = $4, priority = $5, weight = $6, cost_per_segment = $7, currency = $8,
            enabled = $9, valid_from = $10, valid_until = $11, weekly = $12, updated_by = $13
      WHERE id = $2 AND operator_id = $1 AND deleted_at IS NULL`,
    [
      operatorId,
      ruleId,
      rule.prefixTableId ?? null,
      rule.prefixes ?? null,
      rule.priority,
      rule.weight,
      rule.costPerSegment,
      rule.currency,
      rule.enabled,
      rule.validFrom ?? null,
      rule.validUntil ?? null,
      rule.weekly === undefined || rule.weekly === null ? null : JSON.stringify(rule.weekly),
      actor,
    ],
  );
  return rowCount === 1;
}

/** Soft-deletes the operator's live rules, all or the one given. Returns how many. */
export async function softDeleteRoutingRules(
  tx: PoolClient,
  operatorId: string,
  actor: string,
  ruleId?: string,
): Promise<number> {
  const { rowCount } = await tx.query(
    `UPDATE ops.routing_rules SET deleted_at = now(), updated_by = $2
      WHERE operator_id = $1 AND deleted_at IS NULL ${ruleId ? 'AND id = $3' : ''}`,
    ruleId ? [operatorId, actor, ruleId] : [operatorId, actor],
  );
  return rowCount ?? 0;
}

/** numeric(14, 6) prints six decimals; the rule keeps the amount as it was given, minus trailing zeros. */
function trimCost(stored: string): string {
  return stored.includes('.') ? stored.replace(/\.?0+$/, '') : stored;
}
