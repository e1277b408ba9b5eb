import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { freePort } from './ports';

const root = path.resolve(__dirname, '../..');

/**
 * A process as `npm start` runs it, on ports of its own: the service (src/main.ts, every role)
 * or the health-ingestion process (src/health-main.ts, `health`).
 */
export interface ServiceProcess {
  readonly process: ChildProcess;
  readonly ports: { admin: number; internal: number; ops: number };
  /** Everything it printed on stdout and stderr so far. */
  output(): string;
  /** Resolves once /readyz answers 200. */
  ready(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startServiceProcess(
  env: Record<string, string>,
  entry: 'service' | 'health' = 'service',
): Promise<ServiceProcess> {
  const ports = { admin: await freePort(), internal: await freePort(), ops: await freePort() };
  const child = spawn(
    process.execPath,
    // tsx as a loader, not its CLI: the CLI runs the service in a grandchild a SIGKILL would miss.
    ['--import', 'tsx', path.join(root, entry === 'service' ? 'src/main.ts' : 'src/health-main.ts')],
    {
      env: {
        ...process.env,
        ADMIN_PORT: String(ports.admin),
        INTERNAL_PORT: String(ports.internal),
        OPS_PORT: String(ports.ops),
        HEALTH_OPS_PORT: String(ports.ops),
        TEMPORAL_TASK_QUEUE: `operator-management-process-${ports.ops}`,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const exited = once(child, 'exit');
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    process: child,
    ports,
    output: () => out,
    async ready(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (!alive()) throw new Error(`the service exited:\n${out}`);
        const res = await fetch(`http://127.0.0.1:${ports.ops}/readyz`).catch(() => undefined);
        if (res?.status === 200) return;
        if (Date.now() > deadline) throw new Error(`the service never became ready:\n${out.slice(-4000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async stop() {
      if (alive()) child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 15_000)))]);
      clearTimeout(timer);
      if (alive()) child.kill('SIGKILL');
      await exited;
    },
  };
}
