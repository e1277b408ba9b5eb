import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time from Linux's /proc, to tell where a request's cost goes when both sides of a
 * comparison keep the cores busy (their rate ratio is then the inverse ratio of what one request
 * costs in all processes). Clock ticks of 10 ms (USER_HZ 100, as on every Linux Node runs on).
 */

const TICK_MS = 10;

/** User + system CPU of a process, in ms; undefined once it has gone. */
function cpuMsOf(pid: number): number | undefined {
  try {
    // Fields after the command name, which may hold ") ": utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

/** Every process whose command is `name` (PostgreSQL's backends are all `postgres`). */
export function pidsNamed(name: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name;
      } catch {
        return false;
      }
    });
}

/**
 * CPU ms of each named group of processes from now until the returned function is called: per
 * process alive at the end, what it used since the start (all of it, for one started since). One
 * that ended meanwhile is not counted (its last use is unknown).
 */
export function cpuFrom(groups: Record<string, () => number[]>): () => Record<string, number> {
  const snapshot = (pids: number[]) => new Map(pids.map((pid) => [pid, cpuMsOf(pid)]));
  const before = Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, snapshot(pids())]));
  return () =>
    Object.fromEntries(
      Object.entries(groups).map(([name, pids]) => {
        let used = 0;
        for (const [pid, ms] of snapshot(pids())) {
          if (ms !== undefined) used += ms - (before[name]?.get(pid) ?? 0);
        }
        return [name, used];
      }),
    );
}
