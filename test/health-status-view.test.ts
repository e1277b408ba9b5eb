import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { healthKey } from '../src/domain/health';
import { HealthCache } from '../src/health/cache';
import { HealthStatusView } from '../src/health/status-view';
import { loadConfig } from '../src/platform/config';
import { createLogger } from '../src/platform/logger';
import { eventually } from './support/eventually';
import { TcpProxy } from './support/tcp-proxy';

/**
 * Route explain's copy of operators' health on real Redis (CLIENT TRACKING): a status read once
 * is answered from memory until Redis says its key changed or the key expires; while either
 * connection is down nothing is kept, and once both are back a change is seen again.
 */

describe('health statuses kept by Redis tracking', () => {
  const name = `test-${randomUUID()}`;
  let redis: Redis;
  let admin: Redis;
  let view: HealthStatusView;
  const [a, b] = [randomUUID(), randomUUID()];
  const report = (status: string) => JSON.stringify({ operatorId: a, status, reportedAtMs: Date.now() });

  /** The ids of the connections with that role of the view made on the client named `owner`, oldest first. */
  async function clientIds(role: 'reads' | 'invalidations', owner = name): Promise<string[]> {
    const list = (await admin.client('LIST')) as string;
    return list
      .split('\n')
      .filter((l) => l.includes(` name=${owner}-health-${role} `))
      .flatMap((l) => /^id=(\d+)/.exec(l)?.[1] ?? []);
  }
  async function clientId(role: 'reads' | 'invalidations', owner = name): Promise<string> {
    const [id] = await clientIds(role, owner);
    if (!id) throw new Error(`no ${role} connection of ${owner}`);
    return id;
  }
  const statusOf = async (id: string) => (await view.statuses([id])).get(id) ?? 'UNKNOWN';

  beforeAll(async () => {
    const { url } = loadConfig().redis;
    redis = new Redis(url, { connectionName: name });
    admin = new Redis(url);
    view = new HealthStatusView(redis, new HealthCache(redis), createLogger('silent'), 60_000);
    view.start();
    await eventually(() => expect(view.keeping).toBe(true));
  });

  afterAll(async () => {
    view.stop();
    await admin.del(healthKey(a), healthKey(b));
    await Promise.all([redis.quit(), admin.quit()]);
  });

  it('answers a status it read from memory until its key changes, an unknown one included', async () => {
    expect(await statusOf(a)).toBe('UNKNOWN');
    const reads = view.redisReads;
    expect(await statusOf(a)).toBe('UNKNOWN');
    expect(view.redisReads).toBe(reads);

    await admin.set(healthKey(a), report('UP'), 'PX', 60_000);
    await eventually(async () => expect(await statusOf(a)).toBe('UP'));
    const afterWrite = view.redisReads;
    expect(await statusOf(a)).toBe('UP');
    expect(view.redisReads).toBe(afterWrite);

    await admin.set(healthKey(a), report('DOWN'), 'PX', 60_000);
    await eventually(async () => expect(await statusOf(a)).toBe('DOWN'));
    await admin.del(healthKey(a));
    await eventually(async () => expect(await statusOf(a)).toBe('UNKNOWN'));
  });

  it('forgets a status when its key expires', async () => {
    await admin.set(healthKey(b), report('UP'), 'PX', 400);
    expect(await statusOf(b)).toBe('UP');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await statusOf(b)).toBe('UNKNOWN');
  });

  it.each(['invalidations', 'reads'] as const)(
    'keeps nothing while its %s connection is lost, and sees changes again once it is back',
    async (role) => {
      await admin.set(healthKey(a), report('UP'), 'PX', 60_000);
      await eventually(async () => expect(await statusOf(a)).toBe('UP'));
      await admin.client('KILL', 'ID', await clientId(role));
      await eventually(() => expect(view.keeping).toBe(false));
      await admin.set(healthKey(a), report('DOWN'), 'PX', 60_000);
      // Read from Redis while nothing is kept (or already tracked again): never the old UP.
      expect(await statusOf(a)).toBe('DOWN');
      await eventually(() => expect(view.keeping).toBe(true));
      expect(await statusOf(a)).toBe('DOWN');
      await admin.set(healthKey(a), report('UP'), 'PX', 60_000);
      await eventually(async () => expect(await statusOf(a)).toBe('UP'));
    },
  );

  it('answers from the shared client when its reads connection goes silent, and reconnects it', async () => {
    // Its two connections through a proxy that can silence them; the shared client direct.
    const target = new URL(loadConfig().redis.url);
    const proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 6379) });
    const proxied = new Redis(proxy.port, '127.0.0.1', { connectionName: `${name}-proxied`, commandTimeout: 300 });
    const silenced = new HealthStatusView(proxied, new HealthCache(redis), createLogger('silent'), 60_000);
    try {
      silenced.start();
      await eventually(() => expect(silenced.keeping).toBe(true));
      await admin.set(healthKey(b), report('UP'), 'PX', 60_000);
      const missed = randomUUID();
      const silentReader = await clientId('reads', `${name}-proxied`);
      proxy.stall();
      // Not in memory: asked on the silent connection, which times out; answered all the same.
      const answer = await silenced.statuses([b, missed]);
      expect(answer.get(b)).toBe('UP');
      expect(answer.has(missed)).toBe(false);
      // Nothing kept from then on, until a new reads connection (through the proxy) tracks again.
      expect(silenced.keeping).toBe(false);
      // (the silent one may still be listed: Redis has not seen it close)
      await eventually(async () =>
        expect((await clientIds('reads', `${name}-proxied`)).filter((id) => id !== silentReader)).toHaveLength(1),
      );
      await eventually(() => expect(silenced.keeping).toBe(true));
      expect((await silenced.statuses([b])).get(b)).toBe('UP');
      const reads = silenced.redisReads;
      expect((await silenced.statuses([b])).get(b)).toBe('UP');
      expect(silenced.redisReads).toBe(reads);
    } finally {
      silenced.stop();
      proxied.disconnect();
      await proxy.stop();
    }
  });
});
