import { readFile } from 'node:fs/promises';
import nodeVault from 'node-vault';
import type { Config } from '../platform/config';
import type { Logger } from '../platform/logger';

/**
 * KV v2 over node-vault, which has no KV v2 helpers of its own. Every error leaving this module
 * is a VaultError carrying only the status and Vault's own error text: node-vault's raw errors
 * hold the request (token header, written data), so they never escape, not even as `cause`.
 */

export class VaultError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'VaultError';
  }

  /** 4xx other than 404/412/429 will not heal by retrying. */
  get permanent(): boolean {
    return (
      this.status !== undefined && this.status >= 400 && this.status < 500 && ![404, 412, 429].includes(this.status)
    );
  }
}

export interface KvSecret<T> {
  data: T;
  version: number;
}

export interface KvVersionInfo {
  version: number;
  createdAt: Date;
  /** Set when the version was soft-deleted (it can be undeleted). */
  deletedAt?: Date;
  destroyed: boolean;
}

export interface KvMetadata {
  currentVersion: number;
  oldestVersion: number;
  createdAt: Date;
  updatedAt: Date;
  /** Every version Vault still knows of, oldest first. */
  versions: KvVersionInfo[];
}

export interface KvStore {
  /** The latest (or given) live version; undefined when missing, deleted or destroyed. */
  read<T extends Record<string, string>>(path: string, version?: number): Promise<KvSecret<T> | undefined>;
  /** Writes a new version and returns its number; `cas` 0 means "only if none exists yet". */
  write(path: string, data: Record<string, string>, cas?: number): Promise<number>;
  /** The current version number, or undefined when the path has no metadata. */
  currentVersion(path: string): Promise<number | undefined>;
  /** When the path's metadata last changed, or undefined when there is none. */
  updatedAt(path: string): Promise<Date | undefined>;
  /** The path's versions and their state, or undefined when there is no metadata. */
  metadata(path: string): Promise<KvMetadata | undefined>;
  /** The keys directly under a folder (sub-folders end in `/`); empty when there are none. */
  list(folder: string): Promise<string[]>;
  /** Removes every version and the metadata: nothing of the secret remains. */
  destroy(path: string): Promise<void>;
  ping(): Promise<void>;
  /** Stops token renewal (the store is unusable once its token expires). */
  close(): void;
}

interface ApiError {
  response?: { statusCode?: number; body?: { errors?: unknown } };
  code?: unknown;
}

/** Only the status, Vault's own error strings and a network error code survive. */
function toVaultError(err: unknown, action: string, path: string, timeoutMs?: number): VaultError {
  const e = (err ?? {}) as ApiError;
  const status = e.response?.statusCode;
  const errors = Array.isArray(e.response?.body?.errors)
    ? e.response.body.errors.filter((x): x is string => typeof x === 'string')
    : [];
  const code = typeof e.code === 'string' && /^[A-Z_]+$/.test(e.code) ? e.code : undefined;
  let reason: string;
  if (errors.length > 0) reason = errors.join('; ');
  else if (status) reason = `status ${status}`;
  else if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') reason = `no answer within ${timeoutMs ?? '?'} ms`;
  else reason = `Vault unreachable${code ? ` (${code})` : ''}`;
  return new VaultError(`vault ${action} ${path} failed: ${reason}`, status);
}

function statusOf(err: unknown): number | undefined {
  return (err as ApiError | undefined)?.response?.statusCode;
}

interface TokenState {
  ttlS: number;
  renewable: boolean;
}

interface AuthBlock {
  auth?: { client_token?: string; lease_duration?: number; renewable?: boolean };
}

/** Renew (or log in again) below this many seconds of token life left. */
const RELOGIN_BELOW_S = 30;
const RETRY_MS = 5_000;

interface TokenSource {
  /** The token's state as Vault reports it now (lookup-self, or a fresh login). */
  current(): Promise<TokenState>;
  renew(): Promise<TokenState>;
  /** Kubernetes auth only: a new token when the old one cannot be renewed any further. */
  login?: () => Promise<TokenState>;
}

/**
 * Keeps the token alive: renew-self at half its TTL while it is renewable; with Kubernetes auth,
 * log in again once renewal stops extending it (max TTL reached) or fails. Tokens without a TTL
 * (the dev root token) need nothing. Returns the function that stops it.
 */
function keepTokenAlive(source: TokenSource, initial: TokenState | undefined, log: Logger | undefined): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let state = initial;

  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => void refresh(), ms);
    timer.unref();
  };
  const plan = (next: TokenState) => {
    state = next;
    if (next.ttlS > 0) schedule(Math.max(1, next.ttlS / 2) * 1000);
  };

  async function refresh(): Promise<void> {
    try {
      // Unknown state: Vault did not answer at start-up.
      if (!state) return plan(await source.current());
      let next: TokenState | undefined;
      if (state.renewable) {
        try {
          next = await source.renew();
        } catch (err) {
          if (!source.login) throw err;
        }
      }
      if (source.login && (!next || next.ttlS < RELOGIN_BELOW_S)) next = await source.login();
      next ??= await source.current();
      if (!next.renewable && next.ttlS < RELOGIN_BELOW_S)
        log?.warn({ ttlS: next.ttlS }, 'Vault token is not renewable and will expire');
      plan(next);
    } catch (err) {
      log?.warn({ err: (err as Error).message }, 'Vault token renewal failed; retrying');
      schedule(RETRY_MS);
    }
  }

  if (state) plan(state);
  else schedule(RETRY_MS);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

export async function createKvStore(config: Config['vault'], log?: Logger): Promise<KvStore> {
  const timeoutMs = config.requestTimeoutMs ?? 5000;
  const client = nodeVault({
    apiVersion: 'v1',
    endpoint: config.addr,
    token: config.auth.kind === 'token' ? config.auth.token : undefined,
    requestOptions: { timeout: timeoutMs },
    kubernetesPath: config.kubernetesMount ?? 'kubernetes',
    // node-vault's debug output prints written data: silence it.
    debug: () => undefined,
  } as nodeVault.VaultOptions);
  const fail = (err: unknown, action: string, path: string) => toVaultError(err, action, path, timeoutMs);

  const asState = (res: AuthBlock): TokenState => ({
    ttlS: res.auth?.lease_duration ?? 0,
    renewable: res.auth?.renewable ?? false,
  });
  const source: TokenSource = {
    async current() {
      try {
        const self = (await client.tokenLookupSelf()) as { data?: { ttl?: number; renewable?: boolean } };
        return { ttlS: self.data?.ttl ?? 0, renewable: self.data?.renewable ?? false };
      } catch (err) {
        throw fail(err, 'token lookup', 'self');
      }
    },
    async renew() {
      try {
        return asState((await client.tokenRenewSelf()) as AuthBlock);
      } catch (err) {
        throw fail(err, 'token renew', 'self');
      }
    },
  };
  const { auth } = config;
  let initial: TokenState | undefined;
  if (auth.kind === 'kubernetes') {
    source.login = async () => {
      // Read every time: the kubelet rotates the projected service-account token.
      const jwt = (await readFile(auth.jwtPath, 'utf8')).trim();
      try {
        // node-vault keeps the returned client_token as its own token.
        return asState((await client.kubernetesLogin({ role: auth.role, jwt })) as AuthBlock);
      } catch (err) {
        throw fail(err, 'kubernetes login', `role ${auth.role}`);
      }
    };
    initial = await source.login();
  } else {
    // An unreachable Vault at start-up is the readiness check's to report, not a crash.
    initial = await source.current().catch(() => undefined);
  }
  const stopRenewal = keepTokenAlive(source, initial, log);

  const mount = config.mount;
  const dataPath = (path: string) => `${mount}/data/${path}`;
  const metadataPath = (path: string) => `${mount}/metadata/${path}`;

  async function readMetadata(path: string): Promise<KvMetadata | undefined> {
    try {
      const res = (await client.read(metadataPath(path))) as {
        data: {
          current_version: number;
          oldest_version: number;
          created_time: string;
          updated_time: string;
          versions: Record<string, { created_time: string; deletion_time: string; destroyed: boolean }>;
        };
      };
      const d = res.data;
      return {
        currentVersion: d.current_version,
        oldestVersion: d.oldest_version,
        createdAt: new Date(d.created_time),
        updatedAt: new Date(d.updated_time),
        versions: Object.entries(d.versions)
          .map(([n, v]) => ({
            version: Number(n),
            createdAt: new Date(v.created_time),
            ...(v.deletion_time ? { deletedAt: new Date(v.deletion_time) } : {}),
            destroyed: v.destroyed,
          }))
          .sort((a, b) => a.version - b.version),
      };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw fail(err, 'read metadata of', path);
    }
  }

  return {
    async read(path, version) {
      try {
        const res = (await client.read(version ? `${dataPath(path)}?version=${version}` : dataPath(path))) as {
          data: { data: Record<string, string> | null; metadata: { version: number } };
        };
        if (!res.data.data) return undefined;
        return { data: res.data.data as never, version: res.data.metadata.version };
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw fail(err, 'read', path);
      }
    },

    async write(path, data, cas) {
      try {
        const body = cas === undefined ? { data } : { options: { cas }, data };
        const res = (await client.write(dataPath(path), body)) as { data: { version: number } };
        return res.data.version;
      } catch (err) {
        throw fail(err, 'write', path);
      }
    },

    async currentVersion(path) {
      return (await readMetadata(path))?.currentVersion;
    },

    async updatedAt(path) {
      return (await readMetadata(path))?.updatedAt;
    },

    metadata: readMetadata,

    async list(folder) {
      try {
        const res = (await client.list(metadataPath(folder))) as { data: { keys: string[] } };
        return res.data.keys;
      } catch (err) {
        if (statusOf(err) === 404) return [];
        throw fail(err, 'list', folder);
      }
    },

    async destroy(path) {
      try {
        await client.delete(metadataPath(path));
      } catch (err) {
        if (statusOf(err) === 404) return;
        throw fail(err, 'destroy', path);
      }
    },

    async ping() {
      try {
        await client.tokenLookupSelf();
      } catch (err) {
        throw fail(err, 'token lookup', 'self');
      }
    },

    close: stopRenewal,
  };
}
