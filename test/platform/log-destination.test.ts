import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';

/**
 * The service's log destination gathers lines and writes them in batches; a line must still come
 * out soon while the process runs (not only once 4 KiB have gathered), and when it dies of an
 * uncaught error.
 */
function startChild(mode: 'stay' | 'throw') {
  // tsx as a loader, not its CLI: the CLI runs the script in a grandchild that a kill would miss.
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(__dirname, '../support/log-destination-child.ts'), mode],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = once(child, 'exit');
  return { child, exited, out: () => out };
}

describe('log destination', () => {
  it('writes a lone line while the process keeps running', async () => {
    const { child, exited, out } = startChild('stay');
    try {
      const deadline = Date.now() + 8_000;
      while (!out().includes('first line') && Date.now() < deadline && child.exitCode === null) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(child.exitCode).toBeNull();
      expect(out()).toContain('"marker":"first line"');
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });

  it('writes what it gathered when the process dies of an uncaught error', async () => {
    const { exited, out } = startChild('throw');
    const [code] = await exited;
    expect(code).not.toBe(0);
    expect(out()).toContain('"marker":"first line"');
  });
});
