import type { Db } from '../clients/postgres';
import { ROUTING_CHANGES_CHANNEL } from '../db/change-feed';
import { NotifiedCache } from '../db/notified-cache';
import {
  findInlineRules,
  findRuleOperators,
  findTableRules,
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

/** What a key holds, by its kind (the part before the colon). */
interface Parts {
  table: TableRules;
  inline: Map<string, OwnedRule[]>;
  operator: RuleOperator;
}

type Entry = { [K in keyof Parts]: { kind: K; value: Parts[K] } }[keyof Parts];

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
  tables(tableIds: readonly string[]): Promise<Map<string, TableRules>> {
    return this.byId('table', tableIds, (ids) => findTableRules(this.db, ids));
  }

  /** The rules with inline prefixes, by prefix. */
  async inlineRules(): Promise<Map<string, OwnedRule[]>> {
    const entry = await this.cache.get('inline', async () => ({
      kind: 'inline' as const,
      value: await findInlineRules(this.db),
    }));
    return entry?.kind === 'inline' ? entry.value : new Map();
  }

  /** Each of `operatorIds` that exists. */
  operators(operatorIds: readonly string[]): Promise<Map<string, RuleOperator>> {
    return this.byId('operator', operatorIds, (ids) => findRuleOperators(this.db, ids));
  }

  /** The `kind:<id>` entries of `ids` that exist, by id; the missing ones by one `load`. */
  private async byId<K extends 'table' | 'operator'>(
    kind: K,
    ids: readonly string[],
    load: (ids: string[]) => Promise<Map<string, Parts[K]>>,
  ): Promise<Map<string, Parts[K]>> {
    const entries = await this.cache.getMany(
      ids.map((id) => `${kind}:${id}`),
      async (keys) => {
        const found = await load(keys.map(idOf));
        return new Map([...found].map(([id, value]) => [`${kind}:${id}`, { kind, value } as Entry]));
      },
    );
    const values = new Map<string, Parts[K]>();
    for (const [key, entry] of entries) if (entry.kind === kind) values.set(idOf(key), entry.value as Parts[K]);
    return values;
  }
}

/** The id of a `table:<id>` or `operator:<id>` key. */
const idOf = (key: string) => key.slice(key.indexOf(':') + 1);
