import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time from Linux's /proc, to tell where a request's cost goes when both sides of a
 * comparison keep the cores busy (their rate ratio is then the inverse ratio of what one request
 * costs in all processes). Clock ticks of 10 ms (USER_HZ 100, as on every Linux Node runs on).
 */

const TICK_MS = 10;

/** User + system CPU of a process, in ms; 0 once it has gone. */
function cpuMsOf(pid: number): number {
  try {
    // Fields after the command name, which may hold spaces: utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return 0;
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

/** CPU ms of each named group of processes from now until the returned function is called. */
export function cpuFrom(groups: Record<string, () => number[]>): () => Record<string, number> {
  const sum = (pids: number[]) => pids.reduce((total, pid) => total + cpuMsOf(pid), 0);
  const before = Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, sum(pids())]));
  return () =>
    Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, sum(pids()) - (before[name] ?? 0)]));
}
