import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './ports';

/**
 * A nats-server with JetStream of a test's own, on a spare port with a temporary store, so a test
 * can take "NATS" down and bring it back without touching the shared one on 4222. A restart keeps
 * the port and the store, as a real NATS restart would.
 */

const BINARY = path.resolve(__dirname, '../../.stack/venv/bin/nats-server');
const READY_TIMEOUT_MS = 15_000;

export class PrivateNats {
  private process?: ChildProcess;
  private output = '';

  private constructor(
    readonly port: number,
    readonly storeDir: string,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.process !== undefined && this.process.exitCode === null && this.process.signalCode === null;
  }

  static async start(): Promise<PrivateNats> {
    const nats = new PrivateNats(await freePort(), mkdtempSync(path.join(tmpdir(), 'private-nats-')));
    try {
      await nats.restart();
    } catch (err) {
      await nats.dispose();
      throw err;
    }
    return nats;
  }

  /** Starts the server (again) on the same port and store; resolves once it accepts clients. */
  async restart(): Promise<void> {
    if (this.running) throw new Error('the private nats-server is already running');
    this.output = '';
    const child = spawn(BINARY, ['-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.storeDir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.process = child;
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`nats-server not ready within ${READY_TIMEOUT_MS} ms:\n${this.output}`)),
        READY_TIMEOUT_MS,
      );
      child.stderr?.on('data', (d: Buffer) => {
        this.output += d.toString();
        // Logged after JetStream has recovered its streams and the client port is open.
        if (this.output.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited (${code ?? signal}) before it was ready:\n${this.output}`));
      });
    });
    try {
      await ready;
    } catch (err) {
      await this.stop('SIGKILL');
      throw err;
    }
  }

  /** Stops the server (SIGTERM: a clean shutdown, JetStream flushed) and waits for its exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.process;
    if (!child || !this.running) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    await exited;
  }

  /** Stops the server if it runs and removes its store: for afterAll, also after a failure. */
  async dispose(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}
