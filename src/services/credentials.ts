import type { Db } from '../clients/postgres';
import { VaultError, type KvStore } from '../clients/vault';
import { credentialsPath, type SmppCredentials } from '../domain/credentials';
import { isLive } from '../domain/lifecycle';
import type { Logger } from '../platform/logger';
import { CredentialRefsCache } from './credential-refs-cache';
import { notFound, ServiceError, unavailable } from './shared/errors';
import { TtlCache } from '../platform/ttl-cache';

/**
 * What the SMPP connector reads over the internal API: an operator's SMPP credentials at an
 * explicit Vault version. PostgreSQL says which version is current (and which one a running
 * rotation has pending), kept in memory until it changes (CredentialRefsCache); Vault holds the
 * secret. Every read leaves one audit line, never the secret.
 */

/** `current` is the default answer until a rotation completes; `pending` is the rotation's new one. */
export type CredentialsChoice = 'current' | 'pending';

export interface ServedCredentials {
  operatorId: string;
  systemId: string;
  password: string;
  credentialsVersion: number;
}

type Outcome = 'served' | 'not_found' | 'no_pending' | 'failed';

export interface CredentialsServiceDeps {
  db: Db;
  kv: KvStore;
  log: Logger;
  /**
   * How long a read stays in this process's memory (0: never): the Vault version's secret (a KV
   * v2 version never changes once written) and which version is in force, which is also dropped
   * at the commit of any change to it (src/services/credential-refs-cache.ts), once start() ran.
   */
  cacheTtlMs?: number;
}

export class CredentialsService {
  private readonly secrets: TtlCache<SmppCredentials>;
  private readonly refs: CredentialRefsCache;

  constructor(private readonly deps: CredentialsServiceDeps) {
    this.secrets = new TtlCache(deps.cacheTtlMs ?? 0);
    this.refs = new CredentialRefsCache(deps.db, deps.log, deps.cacheTtlMs ?? 0);
  }

  /** Keeps the version in force in memory from now on (with a cache TTL): listens for its changes. */
  start(): void {
    this.refs.start();
  }

  stop(): void {
    this.refs.stop();
  }

  async read(operatorId: string, choice: CredentialsChoice, caller: string): Promise<ServedCredentials> {
    let version: number | null = null;
    let outcome: Outcome = 'failed';
    try {
      const refs = await this.refs.get(operatorId);
      if (!refs || !isLive(refs.status)) {
        outcome = 'not_found';
        throw notFound(`Operator ${operatorId}`);
      }
      version = choice === 'pending' ? refs.pendingCredentialsVersion : refs.credentialsVersion;
      if (version === null) {
        outcome = choice === 'pending' ? 'no_pending' : 'not_found';
        throw choice === 'pending'
          ? new ServiceError('not_found', `No credential rotation is pending for operator ${operatorId}.`)
          : notFound(`Credentials of operator ${operatorId}`);
      }
      const secret = await this.readVersion(operatorId, version);
      outcome = 'served';
      return { operatorId, systemId: secret.system_id, password: secret.password, credentialsVersion: version };
    } finally {
      this.deps.log.info(
        { audit: 'credentials.read', caller, operatorId, which: choice, credentialsVersion: version, outcome },
        'credentials read',
      );
    }
  }

  private async readVersion(operatorId: string, version: number): Promise<SmppCredentials> {
    const key = `${operatorId}@${version}`;
    const hit = this.secrets.get(key);
    if (hit) return hit;
    const secret = await this.readVault(operatorId, version);
    this.secrets.set(key, secret);
    return secret;
  }

  /** Exactly this version, never "latest": a rotation may already have written the next one. */
  private async readVault(operatorId: string, version: number): Promise<SmppCredentials> {
    const { kv, log } = this.deps;
    try {
      const secret = await kv.read<SmppCredentials>(credentialsPath(operatorId), version);
      if (secret) return secret.data;
      // PostgreSQL names a version Vault no longer has: an inconsistency for ops, not a 404 that
      // would tell the connector the operator is gone.
      log.error({ operatorId, credentialsVersion: version }, 'credentials version missing in Vault');
      throw unavailable(
        'Vault',
        `Credentials version ${version} of operator ${operatorId} is not readable; retry later.`,
      );
    } catch (err) {
      if (!(err instanceof VaultError)) throw err;
      // VaultError carries neither token nor secret; the client still learns only "retry".
      log.warn({ err: err.message, operatorId, credentialsVersion: version }, 'Vault read failed');
      throw unavailable('Vault', 'The credentials store is unavailable; retry later.');
    }
  }
}
