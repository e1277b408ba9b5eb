/**
 * `npm run bench`: every benchmark, one after another (each in a process of its own, its output
 * shown as it runs), then one table of every goal line they printed (the lines that say `goal`
 * or end in met / NOT met), so one run shows which goals hold. Exits non-zero if a benchmark
 * failed; a goal not met is a figure, not a failure.
 */
import { spawn } from 'node:child_process';
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
