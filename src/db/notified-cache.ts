import type { Db } from '../clients/postgres';
import type { Logger } from '../platform/logger';
import { TtlCache } from '../platform/ttl-cache';
import { ChangeFeed, type ChangeChannel } from './change-feed';

/**
 * Rows kept in memory by key, each dropped at the commit of a change to it: a trigger NOTIFYs
 * the key on `channel` (heard on the pool's one listening connection, src/db/change-feed.ts),
 * so the next read after a change goes to PostgreSQL. Nothing is kept while that connection is down (a notification could be missed), a key not found is
 * never kept, and an entry expires after `ttlMs` whatever happens, which bounds a connection
 * that died without a word. `ttlMs` 0 keeps nothing: every read goes to PostgreSQL.
 */
export class NotifiedCache<V> {
  private readonly entries: TtlCache<V>;
  private readonly feed: ChangeFeed;
  private unsubscribe?: () => void;
  /**
   * Moves on every notification and every change of the listener's state: a load that saw it
   * move while it ran may hold an answer older than that change, and is not kept.
   */
  private generation = 0;

  constructor(
    db: Db,
    log: Logger,
    private readonly channel: ChangeChannel,
    private readonly ttlMs: number,
    /** Past it the oldest entries go first (src/platform/ttl-cache.ts). */
    maxEntries?: number,
  ) {
    this.entries = new TtlCache(ttlMs, maxEntries);
    this.feed = ChangeFeed.of(db, log);
  }

  /** Listens for changes; until it does (and whenever it cannot), every read goes to PostgreSQL. */
  start(): void {
    if (this.ttlMs <= 0 || this.unsubscribe) return;
    this.unsubscribe = this.feed.subscribe(this.channel, {
      onChange: (key) => {
        this.generation++;
        this.entries.delete(key);
      },
      onReset: () => this.forgetAll(),
    });
    // A load begun before this subscribed may hold a change nobody told it of.
    this.forgetAll();
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.forgetAll();
  }

  async get(key: string, load: (key: string) => Promise<V | undefined>): Promise<V | undefined> {
    const hit = this.entries.get(key);
    if (hit !== undefined) return hit;
    const generation = this.generation;
    const value = await load(key);
    if (value !== undefined && this.keeps(generation)) this.entries.set(key, value);
    return value;
  }

  /** The values of `keys` that exist: from memory where kept, the others by one `load` of them all. */
  async getMany(
    keys: readonly string[],
    load: (missing: string[]) => Promise<Map<string, V>>,
  ): Promise<Map<string, V>> {
    const found = new Map<string, V>();
    const missing: string[] = [];
    const now = Date.now();
    for (const key of keys) {
      const hit = this.entries.get(key, now);
      if (hit === undefined) missing.push(key);
      else found.set(key, hit);
    }
    if (missing.length === 0) return found;
    const generation = this.generation;
    const loaded = await load(missing);
    const keep = this.keeps(generation);
    for (const [key, value] of loaded) {
      found.set(key, value);
      if (keep) this.entries.set(key, value, now);
    }
    return found;
  }

  private keeps(generationAtLoad: number): boolean {
    return this.unsubscribe !== undefined && this.feed.listening && generationAtLoad === this.generation;
  }

  private forgetAll(): void {
    this.generation++;
    this.entries.clear();
  }
}
