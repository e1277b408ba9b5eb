import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';

/**
 * The alert rules (monitoring/alerts.yml) as Prometheus's own promtool reads them: valid, each
 * alert unit-tested (monitoring/alerts.test.yml), each pointing at a runbook entry that exists.
 * promtool comes with Debian's `prometheus` package, which `npm run stack:up` installs.
 */

const root = path.resolve(__dirname, '..');
const monitoring = path.join(root, 'monitoring');
const run = promisify(execFile);

interface RuleFile {
  groups: Array<{ rules: Array<{ alert?: string; annotations?: Record<string, string> }> }>;
}
interface RuleTests {
  tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
}

const rules = parse(readFileSync(path.join(monitoring, 'alerts.yml'), 'utf8')) as RuleFile;
const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);

/** GitHub's anchor of a Markdown heading. */
const anchorOf = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s-]/gu, '')
    .replace(/\s/g, '-');

describe('alert rules', () => {
  it('pass promtool check rules and promtool test rules', async () => {
    const check = await run('promtool', ['check', 'rules', 'alerts.yml'], { cwd: monitoring });
    expect(check.stdout).toContain(`SUCCESS: ${rules.groups.flatMap((g) => g.rules).length} rules found`);
    const tested = await run('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: monitoring });
    expect(tested.stdout).toContain('SUCCESS');
  });

  it('test each alert both silent and firing', () => {
    const cases = (parse(readFileSync(path.join(monitoring, 'alerts.test.yml'), 'utf8')) as RuleTests).tests.flatMap(
      (t) => t.alert_rule_test ?? [],
    );
    expect(alerts.length).toBeGreaterThanOrEqual(7);
    for (const { alert } of alerts) {
      const own = cases.filter((c) => c.alertname === alert);
      expect({ alert, silent: own.some((c) => c.exp_alerts.length === 0) }).toEqual({ alert, silent: true });
      expect({ alert, firing: own.some((c) => c.exp_alerts.length > 0) }).toEqual({ alert, firing: true });
    }
  });

  it('link each alert to its runbook entry', () => {
    const runbook = readFileSync(path.join(root, 'docs/runbook.md'), 'utf8');
    const anchors = new Set([...runbook.matchAll(/^#{2,3} (.+)$/gm)].map((m) => anchorOf(m[1] ?? '')));
    expect(alerts.length).toBeGreaterThanOrEqual(7);
    for (const { alert, annotations } of alerts) {
      const url = annotations?.runbook_url ?? '';
      expect({ alert, url }).toEqual({ alert, url: `docs/runbook.md#${(alert ?? '').toLowerCase()}` });
      expect({ alert, linked: anchors.has((alert ?? '').toLowerCase()) }).toEqual({ alert, linked: true });
    }
  });
});
