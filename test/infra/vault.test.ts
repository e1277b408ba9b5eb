import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../src/config';
import { createKvStore, VaultError, type KvStore } from '../../src/clients/vault';

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
      expect(text).not.toContain(token);
      expect(text).not.toContain('dev-root-token');
      expect(text).not.toContain(secret2);
      expect(text).not.toContain(secret1);
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
});
