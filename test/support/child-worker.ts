import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(__dirname, '../..');

/** A worker process (test/support/worker-process.ts) and everything it has printed so far. */
export interface ChildWorker {
  readonly process: ChildProcess;
  output(): string;
  /** SIGKILL: no shutdown, no finished activity, as a crashed host. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function startChildWorker(env: Record<string, string>, readyTimeoutMs = 30_000): Promise<ChildWorker> {
  // tsx as a loader, not its CLI: the CLI runs the script in a grandchild that a SIGKILL would miss.
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/worker-process.ts'], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const deadline = Date.now() + readyTimeoutMs;
  while (!out.includes('worker-ready')) {
    if (!alive() || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`worker process did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    process: child,
    output: () => out,
    async kill() {
      if (alive()) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (alive()) child.kill('SIGTERM');
      // The timer is cleared once the child is gone: left running, it kept Jest's worker alive.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 15_000)))]).finally(() =>
        clearTimeout(timer),
      );
      if (alive()) child.kill('SIGKILL');
      await exited;
    },
  };
}
