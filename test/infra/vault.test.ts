import { randomUUID } from 'node:crypto';
import nodeVault from 'node-vault';
import { loadConfig } from '../../src/platform/config';
import { createKvStore, VaultError, type KvStore } from '../../src/clients/vault';
import { expectNoSecret } from '../support/secrets';

/** What an error may show anywhere a log or an answer could carry it. */
function exposed(err: unknown): string {
  const e = err as Error;
  return [e.message, String(e.stack), JSON.stringify(e), String(e.cause ?? '')].join('\n');
}

async function failure(promise: Promise<unknown>): Promise<VaultError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VaultError);
  return err as VaultError;
}

describe('Vault KV v2 (real OpenBao)', () => {
  const config = loadConfig().vault;
  const token = config.auth.kind === 'token' ? config.auth.token : 'dev-root-token';
  const path = `ops/test/${randomUUID()}`;
  let kv: KvStore;

  beforeAll(async () => {
    kv = await createKvStore(config);
  });

  afterAll(async () => {
    await kv.destroy(path).catch(() => undefined);
    kv.close();
  });

  it('versions secrets with check-and-set, reads old versions and destroys everything', async () => {
    const secret1 = `s3cr3t-${randomUUID().slice(0, 8)}`;
    const secret2 = `s3cr3t-${randomUUID().slice(0, 8)}`;

    await kv.ping();
    expect(await kv.currentVersion(path)).toBeUndefined();
    expect(await kv.write(path, { system_id: 'sys1', password: secret1 }, 0)).toBe(1);

    // cas 0 means "only if none exists": refused now, with an error that leaks nothing.
    const err = await kv.write(path, { system_id: 'sys1', password: secret2 }, 0).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(VaultError);
    const vaultError = err as VaultError;
    expect(vaultError.status).toBe(400);
    expect(vaultError.permanent).toBe(true);
    for (const text of [vaultError.message, String(vaultError.stack), JSON.stringify(vaultError)]) {
      expectNoSecret(text, token);
      expect(text).not.toContain('dev-root-token');
      expectNoSecret(text, secret2);
      expectNoSecret(text, secret1);
    }

    expect(await kv.write(path, { system_id: 'sys1', password: secret2 }, 1)).toBe(2);

    expect(await kv.read(path)).toEqual({ data: { system_id: 'sys1', password: secret2 }, version: 2 });
    expect(await kv.read(path, 1)).toEqual({ data: { system_id: 'sys1', password: secret1 }, version: 1 });
    expect(await kv.currentVersion(path)).toBe(2);

    await kv.destroy(path);
    expect(await kv.read(path)).toBeUndefined();
    expect(await kv.read(path, 1)).toBeUndefined();
    expect(await kv.currentVersion(path)).toBeUndefined();
    await kv.destroy(path); // destroying a missing path is a no-op
  });

  it('reports metadata: every version with its state, current and oldest', async () => {
    const meta = `ops/test/${randomUUID()}`;
    try {
      expect(await kv.metadata(meta)).toBeUndefined();
      for (const password of ['a1', 'a2', 'a3']) await kv.write(meta, { system_id: 's', password });
      const root = nodeVault({ endpoint: config.addr, token, debug: () => undefined } as nodeVault.VaultOptions);
      await root.write(`${config.mount}/delete/${meta}`, { versions: [1] });
      await root.write(`${config.mount}/destroy/${meta}`, { versions: [2] });

      const md = await kv.metadata(meta);
      expect(md).toMatchObject({ currentVersion: 3, oldestVersion: 0 });
      expect(md?.versions.map((v) => [v.version, v.destroyed, v.deletedAt instanceof Date])).toEqual([
        [1, false, true],
        [2, true, false],
        [3, false, false],
      ]);
      expect(md?.updatedAt.getTime()).toBeGreaterThan(Date.now() - 60_000);
      expect(await kv.read(meta, 1)).toBeUndefined();
      expect(await kv.read(meta, 2)).toBeUndefined();
      expect((await kv.read(meta, 3))?.data.password).toBe('a3');
    } finally {
      await kv.destroy(meta);
    }
  });

  describe('errors carry neither the token nor the data', () => {
    const secret = `s3cr3t-${randomUUID().slice(0, 8)}`;

    it('when Vault is unreachable', async () => {
      const down = await createKvStore({ ...config, addr: 'http://127.0.0.1:1' });
      const err = await failure(down.write(path, { system_id: 's', password: secret }));
      down.close();
      expect(err.message).toBe(`vault write ${path} failed: Vault unreachable (ECONNREFUSED)`);
      expect(err.status).toBeUndefined();
      expect(err.permanent).toBe(false);
      expectNoSecret(exposed(err), token);
      expectNoSecret(exposed(err), secret);
    });

    it('when the token may not use the path', async () => {
      const root = nodeVault({ endpoint: config.addr, token, debug: () => undefined } as nodeVault.VaultOptions);
      const { auth } = (await root.write('auth/token/create', { policies: ['default'], ttl: '5m' })) as {
        auth: { client_token: string };
      };
      const denied = await createKvStore({ ...config, auth: { kind: 'token', token: auth.client_token } });
      const err = await failure(denied.write(path, { system_id: 's', password: secret }));
      const readErr = await failure(denied.read(path, 1));
      denied.close();
      expect(err.status).toBe(403);
      expect(err.permanent).toBe(true);
      expect(err.message).toContain('permission denied');
      for (const text of [exposed(err), exposed(readErr)]) {
        expectNoSecret(text, auth.client_token);
        expectNoSecret(text, secret);
      }
    });

    it('when Vault does not answer within the request timeout', async () => {
      const { createServer } = await import('node:net');
      const sockets: import('node:net').Socket[] = [];
      const hung = createServer((s) => sockets.push(s));
      await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
      const port = (hung.address() as import('node:net').AddressInfo).port;
      try {
        const slow = await createKvStore({ ...config, addr: `http://127.0.0.1:${port}`, requestTimeoutMs: 200 });
        const started = Date.now();
        const err = await failure(slow.write(path, { system_id: 's', password: secret }));
        slow.close();
        expect(Date.now() - started).toBeLessThan(3000);
        expect(err.message).toContain('no answer within 200 ms');
        expectNoSecret(exposed(err), token);
        expectNoSecret(exposed(err), secret);
      } finally {
        sockets.forEach((s) => s.destroy());
        await new Promise((resolve) => hung.close(resolve));
      }
    });
  });

  it('renews a renewable token before it expires', async () => {
    const root = nodeVault({ endpoint: config.addr, token, debug: () => undefined } as nodeVault.VaultOptions);
    // Plain writes: node-vault's tokenCreate() would make the new token the root client's own.
    const create = async () =>
      (
        (await root.write('auth/token/create', {
          policies: ['default'],
          ttl: '3s',
          explicit_max_ttl: '1h',
          renewable: true,
        })) as { auth: { client_token: string } }
      ).auth.client_token;
    const kept = await create();
    const control = await create();
    const store = await createKvStore({ ...config, auth: { kind: 'token', token: kept } });
    try {
      await new Promise((r) => setTimeout(r, 5000));
      // The store's token outlived its 3 s TTL; the same kind of token left alone did not.
      await expect(store.ping()).resolves.toBeUndefined();
      const lookup = await root.write('auth/token/lookup', { token: control }).then(
        () => 'alive',
        (e: { response?: { statusCode?: number } }) => e.response?.statusCode,
      );
      expect(lookup).not.toBe('alive');
    } finally {
      store.close();
    }
  }, 15_000);
});
