import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './ports';

/**
 * A Prometheus of a test's own (Debian's `prometheus` package): its own port, a temporary store,
 * scraping the given targets every second, with the repository's alert rules loaded.
 */
export class PrivatePrometheus {
  private constructor(
    private readonly process: ChildProcess,
    readonly url: string,
    private readonly dir: string,
  ) {}

  static async start(jobs: Record<string, string[]>, ruleFile: string): Promise<PrivatePrometheus> {
    const dir = mkdtempSync(path.join(tmpdir(), 'private-prometheus-'));
    const port = await freePort();
    const config = {
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [ruleFile],
      scrape_configs: Object.entries(jobs).map(([job, targets]) => ({
        job_name: job,
        static_configs: [{ targets }],
      })),
    };
    // JSON is YAML: no serializer needed.
    writeFileSync(path.join(dir, 'prometheus.yml'), JSON.stringify(config));
    const child = spawn(
      'prometheus',
      [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: 'ignore' },
    );
    // A missing binary is an error to report, not an unhandled 'error' event.
    child.on('error', () => undefined);
    const prometheus = new PrivatePrometheus(child, `http://127.0.0.1:${port}`, dir);
    const deadline = Date.now() + 20_000;
    while ((await fetch(`${prometheus.url}/-/ready`).catch(() => undefined))?.status !== 200) {
      if (Date.now() > deadline || child.exitCode !== null) {
        await prometheus.stop();
        throw new Error('the private Prometheus did not become ready');
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    return prometheus;
  }

  /** The sum of an instant query's values (0 when it matches nothing). */
  async query(promql: string): Promise<number> {
    const res = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as { data: { result: Array<{ value: [number, string] }> } };
    return body.data.result.reduce((sum, r) => sum + Number(r.value[1]), 0);
  }

  /** The rules whose last evaluation failed, by name, once each has been evaluated. */
  async unhealthyRules(): Promise<string[]> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const res = await fetch(`${this.url}/api/v1/rules`);
      const body = (await res.json()) as {
        data: { groups: Array<{ rules: Array<{ name: string; health: string }> }> };
      };
      const rules = body.data.groups.flatMap((g) => g.rules);
      if (rules.length > 0 && (rules.every((r) => r.health !== 'unknown') || Date.now() > deadline)) {
        return rules.filter((r) => r.health !== 'ok').map((r) => r.name);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** The names of every series Prometheus holds. */
  async seriesNames(): Promise<string[]> {
    const res = await fetch(`${this.url}/api/v1/label/__name__/values`);
    return ((await res.json()) as { data: string[] }).data;
  }

  async stop(): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) {
      const exited = once(this.process, 'exit');
      this.process.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
