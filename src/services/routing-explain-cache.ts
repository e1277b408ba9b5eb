import type { Db } from '../clients/postgres';
import { NotifiedCache } from '../db/notified-cache';
import {
  findInlineRules,
  findRuleOperators,
  findTableRules,
  ROUTING_CHANGES_CHANNEL,
  type OwnedRule,
  type RuleOperator,
  type TableRules,
} from '../db/routing-explain';
import type { Logger } from '../platform/logger';

/**
 * What route explain reads of the rules, kept in memory so that an explain costs PostgreSQL only
 * the lookup of the number's table entries: each table's name and rules (`table:<id>`), every
 * rule with inline prefixes (`inline`), and each operator's name and status (`operator:<id>`).
 * A trigger NOTIFYs the key at the commit of any change to it, and the entry is dropped when the
 * notification arrives, milliseconds later, in the process that made the change as in any other
 * (src/db/notified-cache.ts says what else keeps it true). Each part is read on its own: for
 * those milliseconds an explain may combine a part from before a change with one from after it.
 */

type Entry =
  | { kind: 'table'; table: TableRules }
  | { kind: 'inline'; byPrefix: Map<string, OwnedRule[]> }
  | { kind: 'operator'; operator: RuleOperator };

/** Tables and operators in memory at most (1,000 tables and their 1,000 operators are 2% of it). */
const MOST_KEPT = 100_000;

export class RoutingExplainCache {
  private readonly cache: NotifiedCache<Entry>;

  constructor(
    private readonly db: Db,
    log: Logger,
    ttlMs: number,
  ) {
    this.cache = new NotifiedCache(db, log, ROUTING_CHANGES_CHANNEL, ttlMs, MOST_KEPT);
  }

  /** Listens for changes; until it does (and whenever it cannot), every read goes to PostgreSQL. */
  start(): void {
    this.cache.start();
  }

  stop(): void {
    this.cache.stop();
  }

  /** Each of `tableIds`, deleted ones with a null name. */
  async tables(tableIds: readonly string[]): Promise<Map<string, TableRules>> {
    const entries = await this.cache.getMany(
      tableIds.map((id) => `table:${id}`),
      async (keys) => {
        const found = await findTableRules(this.db, keys.map(idOf));
        return new Map([...found].map(([id, table]) => [`table:${id}`, { kind: 'table' as const, table }]));
      },
    );
    return new Map(
      [...entries].flatMap(([key, entry]) => (entry.kind === 'table' ? [[idOf(key), entry.table] as const] : [])),
    );
  }

  /** The rules with inline prefixes, by prefix. */
  async inlineRules(): Promise<Map<string, OwnedRule[]>> {
    const entry = await this.cache.get('inline', async () => ({
      kind: 'inline' as const,
      byPrefix: await findInlineRules(this.db),
    }));
    return entry?.kind === 'inline' ? entry.byPrefix : new Map();
  }

  /** Each of `operatorIds` that exists. */
  async operators(operatorIds: readonly string[]): Promise<Map<string, RuleOperator>> {
    const entries = await this.cache.getMany(
      operatorIds.map((id) => `operator:${id}`),
      async (keys) => {
        const found = await findRuleOperators(this.db, keys.map(idOf));
        return new Map([...found].map(([id, operator]) => [`operator:${id}`, { kind: 'operator' as const, operator }]));
      },
    );
    return new Map(
      [...entries].flatMap(([key, entry]) => (entry.kind === 'operator' ? [[idOf(key), entry.operator] as const] : [])),
    );
  }
}

/** The id of a `table:<id>` or `operator:<id>` key. */
const idOf = (key: string) => key.slice(key.indexOf(':') + 1);
