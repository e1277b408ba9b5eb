import type { Db } from '../clients/postgres';
import { NotifiedCache } from '../db/notified-cache';
import { CREDENTIAL_CHANGES_CHANNEL } from '../db/change-feed';
import { findCredentialRefs, type CredentialRefs } from '../db/operators';
import type { Logger } from '../platform/logger';

/**
 * Which Vault version is in force for an operator (and whether it is live), kept in memory so
 * that a connector's credentials read costs no PostgreSQL round trip. A trigger NOTIFYs at the
 * commit of every change to those columns, and the entry is dropped then: a rotation or a
 * delete is seen by the next read (src/db/notified-cache.ts says what else keeps it true).
 */
export class CredentialRefsCache {
  private readonly cache: NotifiedCache<CredentialRefs>;

  constructor(
    private readonly db: Db,
    log: Logger,
    ttlMs: number,
  ) {
    this.cache = new NotifiedCache(db, log, CREDENTIAL_CHANGES_CHANNEL, ttlMs);
  }

  /** Listens for changes; until it does (and whenever it cannot), every read goes to PostgreSQL. */
  start(): void {
    this.cache.start();
  }

  stop(): void {
    this.cache.stop();
  }

  get(operatorId: string): Promise<CredentialRefs | undefined> {
    return this.cache.get(operatorId, (id) => findCredentialRefs(this.db, id));
  }
}
