import type { KvStore } from '../src/clients/vault';
import { credentialsPath } from '../src/domain/credentials';
import { createLogger } from '../src/platform/logger';
import { CredentialsService } from '../src/services/credentials';
import { startHarness, type Harness } from './support/harness';
import { onboardActive } from './support/rotation';

/** The internal API's in-memory cache of Vault versions: it saves reads and never answers stale. */

describe('credentials cache', () => {
  let h: Harness;
  let vaultReads = 0;
  let service: CredentialsService;

  beforeAll(async () => {
    h = await startHarness();
    // The real store, with its reads counted.
    const kv: KvStore = {
      ...h.resources.kv,
      read: (...args: Parameters<KvStore['read']>) => {
        vaultReads++;
        return h.resources.kv.read(...args);
      },
    } as KvStore;
    service = new CredentialsService({ db: h.resources.db, kv, log: createLogger('silent'), cacheTtlMs: 60_000 });
    // As the API process runs it: the version in force kept in memory too, dropped on NOTIFY.
    service.start();
  });
  afterAll(async () => {
    service.stop();
    await h.stop();
  });

  /** A change reaches the service by its NOTIFY, a moment after the commit: polled. */
  async function eventually<T>(read: () => Promise<T>, holds: (value: T) => boolean): Promise<T> {
    const until = Date.now() + 5000;
    for (;;) {
      const value = await read();
      if (holds(value) || Date.now() > until) return value;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('reads a version from Vault once, follows PostgreSQL to a new version, and forgets a deleted operator', async () => {
    const { id, body } = await onboardActive(h);
    const before = vaultReads;
    const first = await service.read(id, 'current', 'test');
    const second = await service.read(id, 'current', 'test');
    expect(first).toEqual(second);
    expect(first).toMatchObject({ credentialsVersion: 1, password: body.password });
    expect(vaultReads - before).toBe(1);

    // A new version made current (as a completed rotation does) is served at once.
    const version = await h.resources.kv.write(
      credentialsPath(id),
      { system_id: body.systemId as string, password: 'new-pw1' },
      1,
    );
    await h.resources.db.query('UPDATE ops.operators SET credentials_version = $2 WHERE id = $1', [id, version]);
    const current = () => service.read(id, 'current', 'test');
    expect(await eventually(current, (c) => c.credentialsVersion === 2)).toMatchObject({
      credentialsVersion: 2,
      password: 'new-pw1',
    });

    // A soft-deleted operator is gone, cached or not.
    await h.resources.db.query('UPDATE ops.operators SET deleted_at = now() WHERE id = $1', [id]);
    const gone = () =>
      current().then(
        () => 'served',
        (err: { kind?: string }) => err.kind ?? 'error',
      );
    expect(await eventually(gone, (outcome) => outcome !== 'served')).toBe('not_found');
  });
});
