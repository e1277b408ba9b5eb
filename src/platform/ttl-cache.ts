/**
 * A bounded in-memory map whose entries expire: what the credentials read keeps (a Vault
 * version's secret) and each NotifiedCache's rows (src/db/notified-cache.ts). Entries sit in
 * insertion order, and with one TTL for all that is expiry order: the expired ones are at the
 * front, so none outlives its TTL by more than the next write, and the bound drops the oldest.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  get(key: string, now = Date.now()): V | undefined {
    const hit = this.entries.get(key);
    return hit && hit.expiresAt > now ? hit.value : undefined;
  }

  set(key: string, value: V, now = Date.now()): void {
    if (this.ttlMs <= 0) return;
    this.entries.delete(key);
    for (const [k, entry] of this.entries) {
      if (entry.expiresAt > now && this.entries.size < this.maxEntries) break;
      this.entries.delete(k);
    }
    this.entries.set(key, { value, expiresAt: now + this.ttlMs });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
