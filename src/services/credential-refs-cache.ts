import type { Pool } from 'pg';
import { CREDENTIAL_CHANGES_CHANNEL, findCredentialRefs, type CredentialRefs } from '../db/operators';
import { PgListener } from '../db/listener';
import type { Logger } from '../platform/logger';

/**
 * Which Vault version is in force for an operator (and whether it is live), kept in memory so
 * that a connector's credentials read costs no PostgreSQL round trip. A trigger NOTIFYs at the
 * commit of every change to those columns, and the entry is dropped then: a rotation or a
 * delete is seen by the next read. Nothing is kept while the listening connection is down (a
 * notification could be missed), an operator not found is never kept, and an entry expires
 * after `ttlMs` whatever happens, which bounds a connection that died without a word.
 */

const MAX_ENTRIES = 10_000;

export class CredentialRefsCache {
  private readonly entries = new Map<string, { refs: CredentialRefs; expiresAt: number }>();
  private readonly listener: PgListener;
  /**
   * Moves on every notification and every change of the listener's state: a lookup that saw it
   * move while it ran may hold an answer older than that change, and is not kept.
   */
  private generation = 0;

  constructor(
    private readonly db: Pool,
    log: Logger,
    private readonly ttlMs: number,
  ) {
    this.listener = new PgListener(
      db,
      CREDENTIAL_CHANGES_CHANNEL,
      {
        onNotify: (operatorId) => {
          this.generation++;
          this.entries.delete(operatorId);
        },
        onListening: () => this.forgetAll(),
        onLost: () => this.forgetAll(),
      },
      log,
    );
  }

  /** Listens for changes; until it does (and whenever it cannot), every read goes to PostgreSQL. */
  start(): void {
    if (this.ttlMs > 0) this.listener.start();
  }

  stop(): void {
    this.listener.stop();
    this.forgetAll();
  }

  async get(operatorId: string): Promise<CredentialRefs | undefined> {
    const now = Date.now();
    const hit = this.entries.get(operatorId);
    if (hit && hit.expiresAt > now) return hit.refs;
    const generation = this.generation;
    const refs = await findCredentialRefs(this.db, operatorId);
    if (refs && this.listener.listening && generation === this.generation) this.keep(operatorId, refs, now);
    return refs;
  }

  private keep(operatorId: string, refs: CredentialRefs, now: number): void {
    this.entries.delete(operatorId);
    // Oldest first (insertion order): the expired ones, then as many as the bound needs.
    for (const [id, entry] of this.entries) {
      if (entry.expiresAt > now && this.entries.size < MAX_ENTRIES) break;
      this.entries.delete(id);
    }
    this.entries.set(operatorId, { refs, expiresAt: now + this.ttlMs });
  }

  private forgetAll(): void {
    this.generation++;
    this.entries.clear();
  }
}
