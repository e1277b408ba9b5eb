import type { Db } from '../clients/postgres';
import { CREDENTIAL_CHANGES_CHANNEL, findCredentialRefs, type CredentialRefs } from '../db/operators';
import { PgListener } from '../db/listener';
import type { Logger } from '../platform/logger';
import { TtlCache } from './shared/ttl-cache';

/**
 * Which Vault version is in force for an operator (and whether it is live), kept in memory so
 * that a connector's credentials read costs no PostgreSQL round trip. A trigger NOTIFYs at the
 * commit of every change to those columns, and the entry is dropped then: a rotation or a
 * delete is seen by the next read. Nothing is kept while the listening connection is down (a
 * notification could be missed), an operator not found is never kept, and an entry expires
 * after `ttlMs` whatever happens, which bounds a connection that died without a word.
 */

export class CredentialRefsCache {
  private readonly entries: TtlCache<CredentialRefs>;
  private readonly listener: PgListener;
  /**
   * Moves on every notification and every change of the listener's state: a lookup that saw it
   * move while it ran may hold an answer older than that change, and is not kept.
   */
  private generation = 0;

  constructor(
    private readonly db: Db,
    log: Logger,
    private readonly ttlMs: number,
  ) {
    this.entries = new TtlCache(ttlMs);
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
    const hit = this.entries.get(operatorId);
    if (hit) return hit;
    const generation = this.generation;
    const refs = await findCredentialRefs(this.db, operatorId);
    if (refs && this.listener.listening && generation === this.generation) this.entries.set(operatorId, refs);
    return refs;
  }

  private forgetAll(): void {
    this.generation++;
    this.entries.clear();
  }
}
