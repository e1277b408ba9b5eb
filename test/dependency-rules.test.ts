import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

/** The import rules of .dependency-cruiser.cjs hold on src/ and catch each kind of break in a fixture. */

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
const config = path.join(root, '.dependency-cruiser.cjs');

async function cruise(cwd: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [cli, 'src', '--config', config, '--output-type', 'err'],
      {
        cwd,
      },
    );
    return { code: 0, output: stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('import rules', () => {
  it('hold on src/', async () => {
    const { code, output } = await cruise(root);
    expect(output).toContain('no dependency violations found');
    expect(code).toBe(0);
  });

  it('fail on a cycle and on every forbidden import, naming each rule', async () => {
    const { code, output } = await cruise(path.join(__dirname, 'fixtures/dependency-rules'));
    expect(code).not.toBe(0);
    for (const rule of [
      'no-cycle',
      'db-and-events-below-api',
      'workflows-stay-deterministic',
      'domain-stands-alone',
      'activities-below-api',
    ]) {
      expect(output).toContain(`error ${rule}:`);
    }
  });
});
