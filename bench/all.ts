/**
 * `npm run bench`: every benchmark, one after another (each in a process of its own, its output
 * shown as it runs), then one table of every goal line they printed (the lines that say `goal`
 * or end in met / NOT met), so one run shows which goals hold. Exits non-zero if a benchmark
 * failed; a goal not met is a figure, not a failure.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

const BENCHES = [
  'outbox-relay',
  'propagation',
  'credentials-read',
  'health-ingestion',
  'prefix-import',
  'admin-read',
  'explain',
  'snapshot',
];

/** A line that says whether a goal holds: it ends in a verdict, or names a goal and one. */
const isGoal = (line: string) =>
  /\b(met|MISSED)\s*\|?\s*$/i.test(line) || (/goal/i.test(line) && /\b(met|MISSED)\b/i.test(line));

/** The machine's CPU time so far, all cores, and the part of it idle (Linux: /proc/stat). */
function cpuTimes(): { total: number; idle: number } {
  const fields = (/^cpu\s+(.*)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1] ?? '').split(/\s+/).map(Number);
  return { total: fields.reduce((sum, n) => sum + n, 0), idle: fields[3] ?? 0 };
}

/**
 * Until the machine is quiet: a second in which the cores were at least 90% idle (iowait counts
 * as busy), at most a minute. What one benchmark leaves behind (PostgreSQL's checkpoint and
 * autovacuum after a heavy write load, a dropped database's files) then does not fall on the
 * next one's figures: in one whole run the burst's floor ran at 0.6 of its own rate just after
 * the relay's backlogs.
 */
async function quietMachine(): Promise<void> {
  if (!existsSync('/proc/stat')) return;
  const started = Date.now();
  let idle = 0;
  while (Date.now() - started < 60_000) {
    const before = cpuTimes();
    await new Promise((r) => setTimeout(r, 1000));
    const after = cpuTimes();
    idle = (after.idle - before.idle) / Math.max(1, after.total - before.total);
    if (idle >= 0.9) break;
  }
  const waited = (Date.now() - started) / 1000;
  console.log(`(a quiet machine after ${waited.toFixed(0)} s: ${(idle * 100).toFixed(0)}% idle)`);
}

async function run(name: string): Promise<{ goals: string[]; ok: boolean }> {
  const child = spawn(process.execPath, [...process.execArgv, path.join(__dirname, `${name}.ts`)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const goals: string[] = [];
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    console.log(line);
    if (isGoal(line))
      goals.push(
        line
          .trim()
          .replace(/^\|\s*|\s*\|$/g, '')
          .replace(/\s*\|\s*/g, '; '),
      );
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { goals, ok: code === 0 };
}

async function main(): Promise<void> {
  const rows: Array<[string, string]> = [];
  let failed = 0;
  for (const name of BENCHES) {
    console.log(`\n=== bench:${name}`);
    await quietMachine();
    const { goals, ok } = await run(name);
    if (!ok) failed++;
    if (!ok) rows.push([name, 'FAILED (see its output above)']);
    for (const goal of goals) rows.push([name, goal]);
  }
  console.log('\n| benchmark | goal |\n|---|---|');
  for (const [name, goal] of rows) console.log(`| bench:${name} | ${goal.replace(/\|/g, '\\|')} |`);
  const unmet = rows.filter(([, goal]) => /NOT met|not met|MISSED|FAILED/.test(goal)).length;
  console.log(
    `\n${rows.length - unmet} of ${rows.length} goal lines met${failed ? `; ${failed} benchmark(s) failed` : ''}`,
  );
  if (failed) process.exitCode = 1;
}

void main();
