import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { freePort } from './support/ports';
import { startServiceProcess, type ServiceProcess } from './support/service-process';

/**
 * The service as `npm start` runs it: one process, every role, the real stack. Its Redis is a
 * private instance on a spare port, so the test can stop "a dependency" without touching the
 * shared one, and watch /readyz name it.
 */

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} never happened (last error: ${String(last)})`);
}

describe('the service process', () => {
  let redis: ChildProcess;
  let service: ServiceProcess;
  const ports: Record<string, number> = {};

  beforeAll(async () => {
    ports.redis = await freePort();
    redis = spawn(
      'redis-server',
      ['--port', String(ports.redis), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    service = await startServiceProcess({ LOG_LEVEL: 'info', REDIS_URL: `redis://127.0.0.1:${ports.redis}` });
    ports.ops = service.ports.ops;
    ports.admin = service.ports.admin;
  });

  afterAll(async () => {
    await service.stop();
    if (redis.exitCode === null) {
      redis.kill('SIGKILL');
      await once(redis, 'exit');
    }
  });

  it('comes up ready, stays ready but degraded when Redis goes down, and stops cleanly on SIGTERM', async () => {
    const ready = await waitFor('readiness', async () => {
      const res = await fetch(`http://127.0.0.1:${ports.ops}/readyz`);
      return res.status === 200 ? ((await res.json()) as { checks: Record<string, string> }) : undefined;
    });
    expect(ready.checks).toEqual({
      postgres: 'up',
      redis: 'up',
      nats: 'up',
      vault: 'up',
      temporal: 'up',
      process: 'up',
    });

    expect((await fetch(`http://127.0.0.1:${ports.ops}/healthz`)).status).toBe(200);
    const admin = await fetch(`http://127.0.0.1:${ports.admin}/v1/admin/operators`);
    expect(admin.status).toBe(401);
    await waitFor('the Temporal worker', async () =>
      service.output().includes('Temporal worker running') ? true : undefined,
    );

    redis.kill('SIGTERM');
    await once(redis, 'exit');
    // The api and worker roles serve without Redis (only health reads fail): ready, degraded.
    const degraded = await waitFor('redis reported down', async () => {
      const res = await fetch(`http://127.0.0.1:${ports.ops}/readyz`);
      const body = (await res.json()) as { degraded?: string[]; checks: Record<string, string> };
      return body.checks.redis !== 'up' ? { status: res.status, body } : undefined;
    });
    expect(degraded.status).toBe(200);
    expect(degraded.body.degraded).toEqual(['redis']);
    expect(degraded.body.checks.postgres).toBe('up');

    service.process.kill('SIGTERM');
    const [code] = (await once(service.process, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(service.output()).toContain('"msg":"stopped"');
  });
});
