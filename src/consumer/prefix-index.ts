import type { RoutingRule } from '../domain/operator';

/**
 * The routing state's longest-prefix index: for a prefix, the tables that hold it and the rules
 * that name it inline; for a table, the rules that use it. A number is looked up by its own
 * prefixes (at most 15), whatever the number of rules, tables and entries held.
 */

export interface IndexedRule {
  operatorId: string;
  rule: RoutingRule;
}

export class PrefixIndex {
  /** The tables holding a prefix: one id (the usual case, no array kept) or several. */
  private readonly tablesByPrefix = new Map<string, string | string[]>();
  private readonly rulesByInlinePrefix = new Map<string, IndexedRule[]>();
  private readonly rulesByTable = new Map<string, IndexedRule[]>();

  addTablePrefix(tableId: string, prefix: string): void {
    const held = this.tablesByPrefix.get(prefix);
    if (held === undefined) this.tablesByPrefix.set(prefix, tableId);
    else if (typeof held === 'string') {
      if (held !== tableId) this.tablesByPrefix.set(prefix, [held, tableId]);
    } else if (!held.includes(tableId)) held.push(tableId);
  }

  removeTablePrefix(tableId: string, prefix: string): void {
    const held = this.tablesByPrefix.get(prefix);
    if (held === tableId) this.tablesByPrefix.delete(prefix);
    else if (Array.isArray(held)) {
      const rest = held.filter((id) => id !== tableId);
      this.tablesByPrefix.set(prefix, rest.length === 1 ? rest[0]! : rest);
    }
  }

  /** An operator's rules were `before` and are `after` now (either may be empty). */
  replaceRules(operatorId: string, before: readonly RoutingRule[], after: readonly RoutingRule[]): void {
    for (const rule of before) {
      for (const [map, key] of this.filed(rule)) {
        const rest = (map.get(key) ?? []).filter((e) => e.operatorId !== operatorId);
        if (rest.length > 0) map.set(key, rest);
        else map.delete(key);
      }
    }
    for (const rule of after) {
      for (const [map, key] of this.filed(rule)) {
        const held = map.get(key);
        if (held) held.push({ operatorId, rule });
        else map.set(key, [{ operatorId, rule }]);
      }
    }
  }

  /**
   * Every rule a number with these prefixes matches, once, with the longest of its prefixes (or
   * of its table's) the number starts with: `prefixes` are looked up longest first.
   */
  *matches(prefixes: readonly string[]): Generator<{ indexed: IndexedRule; prefix: string }> {
    const seen = new Set<string>();
    const longestFirst = [...prefixes].sort((a, b) => b.length - a.length);
    for (const prefix of longestFirst) {
      const tables = this.tablesByPrefix.get(prefix);
      const fromTables = tables === undefined ? [] : typeof tables === 'string' ? [tables] : tables;
      const found = [
        ...(this.rulesByInlinePrefix.get(prefix) ?? []),
        ...fromTables.flatMap((id) => this.rulesByTable.get(id) ?? []),
      ];
      for (const indexed of found) {
        if (seen.has(indexed.rule.id)) continue;
        seen.add(indexed.rule.id);
        yield { indexed, prefix };
      }
    }
  }

  /** Where a rule is filed: under each of its inline prefixes, or under its table. */
  private filed(rule: RoutingRule): Array<[Map<string, IndexedRule[]>, string]> {
    if (rule.prefixes) return [...new Set(rule.prefixes)].map((p) => [this.rulesByInlinePrefix, p]);
    return rule.prefixTableId ? [[this.rulesByTable, rule.prefixTableId]] : [];
  }
}
