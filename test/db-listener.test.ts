import { createPool, type Db } from '../src/clients/postgres';
import { PgListener } from '../src/db/listener';
import { loadConfig } from '../src/platform/config';
import { createLogger } from '../src/platform/logger';
import { TcpProxy } from './support/tcp-proxy';

/**
 * The one LISTEN connection (the relay's wake-up, the credentials cache's changes) on real
 * PostgreSQL through a proxy: a connection that goes silent without closing is found by the
 * heartbeat, counted as lost and replaced.
 */

const CHANNEL = 'test_listener_heartbeat';

describe('PgListener', () => {
  let proxy: TcpProxy;
  let db: Db;
  const direct = createPool(loadConfig().postgres);

  beforeAll(async () => {
    const target = new URL(loadConfig().postgres.url);
    proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
    const url = Object.assign(new URL(target), { hostname: '127.0.0.1', port: String(proxy.port) }).toString();
    db = createPool({ ...loadConfig().postgres, url });
  });
  afterAll(async () => {
    await Promise.all([db.end(), direct.end()]);
    await proxy.stop();
  });

  it('takes a silent connection for lost, listens again, and hears on the new one', async () => {
    const events: string[] = [];
    const heard: string[] = [];
    const listener = new PgListener(
      db,
      [CHANNEL],
      {
        onNotify: (payload) => heard.push(payload),
        onListening: () => events.push('listening'),
        onLost: (err) => events.push(`lost: ${err.message}`),
      },
      createLogger('silent'),
      { everyMs: 100, timeoutMs: 300 },
    );
    const until = async (check: () => boolean, what: string) => {
      const deadline = Date.now() + 10_000;
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`never happened: ${what} (events: ${events.join('; ')})`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    listener.start();
    try {
      await until(() => listener.listening, 'listening');
      await direct.query(`SELECT pg_notify('${CHANNEL}', 'one')`);
      await until(() => heard.includes('one'), 'the first notification');

      proxy.stall();
      await until(() => events.some((e) => e.startsWith('lost')), 'the silent connection counted as lost');
      expect(events.find((e) => e.startsWith('lost'))).toBe('lost: LISTEN heartbeat timed out');
      expect(listener.listening).toBe(false);

      await until(() => events.filter((e) => e === 'listening').length === 2, 'listening again');
      await direct.query(`SELECT pg_notify('${CHANNEL}', 'two')`);
      await until(() => heard.includes('two'), 'a notification on the new connection');
    } finally {
      listener.stop();
    }
    expect(listener.listening).toBe(false);
  });
});
