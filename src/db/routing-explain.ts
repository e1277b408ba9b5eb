import type { Pool, PoolClient } from 'pg';
import type { OperatorStatus, RoutingRule } from '../domain/operator';
import { RULE_COLUMNS, toRule, type RuleRow } from './routing-rules';

/**
 * SQL for route explain. The number's table entries are looked up on every call (a million
 * rows); what the rules, their tables and operators say is read by the parts below, which
 * src/services/routing-explain-cache.ts keeps in memory until a change's NOTIFY
 * (migrations/1765100000000_routing-changes-notify.sql) drops them.
 */

type Queryable = Pool | PoolClient;

/** A live rule and the operator it belongs to. */
export interface OwnedRule {
  operatorId: string;
  rule: RoutingRule;
}

/** A prefix table as explain shows it: its name (null once deleted) and the live rules on it. */
export interface TableRules {
  name: string | null;
  rules: OwnedRule[];
}

/** What explain shows of an operator, and whether it was soft-deleted. */
export interface RuleOperator {
  name: string;
  status: OperatorStatus;
  deleted: boolean;
}

/** For each table with an entry among `prefixes`: the longest such entry. */
export async function findTableHits(db: Queryable, prefixes: readonly string[]): Promise<Map<string, string>> {
  const { rows } = await db.query<{ prefix_table_id: string; prefix: string }>({
    name: 'routing-explain-table-hits',
    text: `SELECT DISTINCT ON (prefix_table_id) prefix_table_id, prefix
             FROM ops.prefix_table_entries
            WHERE deleted_at IS NULL AND prefix = ANY($1::text[])
            ORDER BY prefix_table_id, length(prefix) DESC`,
    values: [prefixes],
  });
  return new Map(rows.map((r) => [r.prefix_table_id, r.prefix]));
}

/** A wanted table and one of its rules, or all nulls for a table without any (LEFT JOIN). */
type TableRuleRow = { table_id: string; table_name: string | null } & (
  (RuleRow & { operator_id: string }) | ({ [K in keyof RuleRow]: null } & { operator_id: null })
);

/** Each of `tableIds` (one that never existed as a deleted one), with its live rules. */
export async function findTableRules(db: Queryable, tableIds: readonly string[]): Promise<Map<string, TableRules>> {
  const { rows } = await db.query<TableRuleRow>({
    name: 'routing-explain-table-rules',
    text: `SELECT wanted.id AS table_id, t.name AS table_name, r.operator_id, ${RULE_COLUMNS}
             FROM unnest($1::uuid[]) AS wanted(id)
             LEFT JOIN ops.prefix_tables t ON t.id = wanted.id AND t.deleted_at IS NULL
             LEFT JOIN ops.routing_rules r ON r.prefix_table_id = t.id AND r.deleted_at IS NULL`,
    values: [tableIds],
  });
  const tables = new Map<string, TableRules>();
  for (const row of rows) {
    let table = tables.get(row.table_id);
    if (!table) tables.set(row.table_id, (table = { name: row.table_name, rules: [] }));
    if (row.operator_id !== null) table.rules.push({ operatorId: row.operator_id, rule: toRule(row) });
  }
  return tables;
}

/** Every live rule with inline prefixes, under each of its prefixes. */
export async function findInlineRules(db: Queryable): Promise<Map<string, OwnedRule[]>> {
  const { rows } = await db.query<RuleRow & { operator_id: string }>({
    name: 'routing-explain-inline-rules',
    text: `SELECT r.operator_id, ${RULE_COLUMNS}
             FROM ops.routing_rules r WHERE r.deleted_at IS NULL AND r.prefixes IS NOT NULL`,
  });
  const byPrefix = new Map<string, OwnedRule[]>();
  for (const row of rows) {
    const owned = { operatorId: row.operator_id, rule: toRule(row) };
    for (const prefix of row.prefixes ?? []) {
      const rules = byPrefix.get(prefix);
      if (rules) rules.push(owned);
      else byPrefix.set(prefix, [owned]);
    }
  }
  return byPrefix;
}

/** Each of `operatorIds` that exists. */
export async function findRuleOperators(
  db: Queryable,
  operatorIds: readonly string[],
): Promise<Map<string, RuleOperator>> {
  const { rows } = await db.query<{ id: string; name: string; status: OperatorStatus; deleted: boolean }>({
    name: 'routing-explain-operators',
    text: `SELECT id, name, status, deleted_at IS NOT NULL AS deleted FROM ops.operators WHERE id = ANY($1::uuid[])`,
    values: [operatorIds],
  });
  return new Map(rows.map((r) => [r.id, { name: r.name, status: r.status, deleted: r.deleted }]));
}
