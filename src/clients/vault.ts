import { readFile } from 'node:fs/promises';
import nodeVault from 'node-vault';
import type { Config } from '../config';

/**
 * KV v2 over node-vault, which has no KV v2 helpers of its own. Every error leaving this module
 * is a VaultError carrying only the status and Vault's own error text: node-vault's raw errors
 * hold the request (token header, written data), so they never escape.
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

export interface KvStore {
  /** The latest (or given) live version; undefined when missing, deleted or destroyed. */
  read<T extends Record<string, string>>(path: string, version?: number): Promise<KvSecret<T> | undefined>;
  /** Writes a new version and returns its number; `cas` 0 means "only if none exists yet". */
  write(path: string, data: Record<string, string>, cas?: number): Promise<number>;
  /** The current version number, or undefined when the path has no metadata. */
  currentVersion(path: string): Promise<number | undefined>;
  /** When the path's metadata last changed, or undefined when there is none. */
  updatedAt(path: string): Promise<Date | undefined>;
  /** The keys directly under a folder (sub-folders end in `/`); empty when there are none. */
  list(folder: string): Promise<string[]>;
  /** Removes every version and the metadata: nothing of the secret remains. */
  destroy(path: string): Promise<void>;
  ping(): Promise<void>;
}

interface ApiError {
  response?: { statusCode?: number; body?: { errors?: unknown } };
  message?: unknown;
}

function toVaultError(err: unknown, action: string, path: string): VaultError {
  const e = (err ?? {}) as ApiError;
  const status = e.response?.statusCode;
  const errors = Array.isArray(e.response?.body?.errors)
    ? e.response.body.errors.filter((x) => typeof x === 'string')
    : [];
  const reason = errors.length > 0 ? errors.join('; ') : status ? `status ${status}` : 'Vault unreachable';
  return new VaultError(`vault ${action} ${path} failed: ${reason}`, status);
}

function statusOf(err: unknown): number | undefined {
  return (err as ApiError | undefined)?.response?.statusCode;
}

export async function createKvStore(config: Config['vault']): Promise<KvStore> {
  const client = nodeVault({
    apiVersion: 'v1',
    endpoint: config.addr,
    token: config.auth.kind === 'token' ? config.auth.token : undefined,
    // node-vault's debug output prints written data: silence it.
    debug: () => undefined,
  } as nodeVault.VaultOptions);

  if (config.auth.kind === 'kubernetes') {
    const jwt = (await readFile(config.auth.jwtPath, 'utf8')).trim();
    try {
      const login = (await client.kubernetesLogin({ role: config.auth.role, jwt })) as {
        auth: { client_token: string };
      };
      client.token = login.auth.client_token;
    } catch (err) {
      throw toVaultError(err, 'kubernetes login', `role ${config.auth.role}`);
    }
  }

  const mount = config.mount;
  const dataPath = (path: string) => `${mount}/data/${path}`;
  const metadataPath = (path: string) => `${mount}/metadata/${path}`;

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
        throw toVaultError(err, 'read', path);
      }
    },

    async write(path, data, cas) {
      try {
        const body = cas === undefined ? { data } : { options: { cas }, data };
        const res = (await client.write(dataPath(path), body)) as { data: { version: number } };
        return res.data.version;
      } catch (err) {
        throw toVaultError(err, 'write', path);
      }
    },

    async currentVersion(path) {
      try {
        const res = (await client.read(metadataPath(path))) as { data: { current_version: number } };
        return res.data.current_version;
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw toVaultError(err, 'read metadata of', path);
      }
    },

    async updatedAt(path) {
      try {
        const res = (await client.read(metadataPath(path))) as { data: { updated_time: string } };
        return new Date(res.data.updated_time);
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw toVaultError(err, 'read metadata of', path);
      }
    },

    async list(folder) {
      try {
        const res = (await client.list(metadataPath(folder))) as { data: { keys: string[] } };
        return res.data.keys;
      } catch (err) {
        if (statusOf(err) === 404) return [];
        throw toVaultError(err, 'list', folder);
      }
    },

    async destroy(path) {
      try {
        await client.delete(metadataPath(path));
      } catch (err) {
        if (statusOf(err) === 404) return;
        throw toVaultError(err, 'destroy', path);
      }
    },

    async ping() {
      try {
        await client.tokenLookupSelf();
      } catch (err) {
        throw toVaultError(err, 'token lookup', 'self');
      }
    },
  };
}
