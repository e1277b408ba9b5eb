/**
 * The routing snapshot on the real local stack (`npm run stack:up`): `GET
 * /v1/internal/routing/snapshot` (plain HTTP, as INTERNAL_TLS=false serves it) of 1,000,000
 * prefixes in 1,000 tables, 1,000 operators and 10,000 rules, served by the internal API in a
 * process of its own (bench/serve.ts `internal-plain`) and read to the end by a client in this
 * one: MB/s and time to first byte, beside a raw `COPY (SELECT … live entries) TO STDOUT` of the
 * same rows in the same run, the ratio, and the serving process's peak RSS growth.
 *
 * Then what a routing engine does with it: the consumer helper (src/consumer/routing-state.ts)
 * loads it in this process (time, heap growth) and answers explain for random numbers from its
 * index, beside the floor of any in-memory routing: a longest-prefix look-up of each number in a
 * bare Map of the same entries, in the same run. No goal is set for these; they size a routing
 * engine.
 *
 * Usage: `npm run bench:snapshot`. BENCH_PREFIXES, BENCH_OPERATORS, BENCH_RULES, BENCH_TABLES.
 * Goals: ≥ 0.5 of raw COPY, RSS growth under 256 MB. Throwaway database, dropped at the end.
 */
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { to as copyTo } from 'pg-copy-streams';
import { ndjsonRecords, RoutingState } from '../src/consumer/routing-state';
import { prefixesOf } from '../src/domain/route-order';
import type { SnapshotRecord } from '../src/domain/routing-snapshot';
import { openBenchDatabase, routingDataSize, sampleRss, seedRoutingData, spawnServerProcess } from './bench-service';
import { runBench, type Cleanup } from './cleanup';

const MB = 1024 * 1024;
const ROUNDS = 5;

const median = <T extends { ms: number }>(runs: T[]): T => {
  const sorted = [...runs].sort((a, b) => a.ms - b.ms);
  const mid = sorted[Math.floor(sorted.length / 2)];
  if (!mid) throw new Error('no runs');
  return mid;
};

function counter(): { sink: Writable; bytes: () => number } {
  let n = 0;
  return {
    sink: new Writable({
      write(chunk: Buffer, _enc, done) {
        n += chunk.length;
        done();
      },
    }),
    bytes: () => n,
  };
}

async function main(cleanup: Cleanup): Promise<void> {
  const size = routingDataSize();
  const s = await openBenchDatabase(cleanup, { relay: false });
  await seedRoutingData(s.resources, size);
  // The internal API in a process of its own (its memory measured there); the reader here.
  const server = await spawnServerProcess(cleanup, 'internal-plain', s.config.postgres.url);
  const url = `${server.url}/v1/internal/routing/snapshot`;

  const read = async () => {
    const start = performance.now();
    const res = await fetch(url);
    if (res.status !== 200) throw new Error(`the snapshot answered ${res.status}: ${await res.text()}`);
    const reader = res.body?.getReader();
    let first = 0;
    let bytes = 0;
    for (;;) {
      const chunk = await reader?.read();
      if (!chunk || chunk.done) break;
      if (!first) first = performance.now() - start;
      bytes += chunk.value.length;
    }
    return { ms: performance.now() - start, firstByteMs: first, bytes };
  };

  const raw = async () => {
    const client = await s.resources.db.connect();
    try {
      const out = counter();
      const start = performance.now();
      await pipeline(
        client.query(
          copyTo(`COPY (SELECT e.prefix_table_id, e.prefix FROM ops.prefix_table_entries e
                   WHERE e.deleted_at IS NULL ORDER BY e.prefix_table_id, e.prefix) TO STDOUT`),
        ),
        out.sink,
      );
      return { ms: performance.now() - start, bytes: out.bytes() };
    } finally {
      client.release();
    }
  };

  // From before the first read: a warm-up read would leave its own peak in the baseline.
  const rss = sampleRss(server.pid);
  await read(); // warm-up
  await raw();
  // Alternating rounds, the median of each side: one read is at the mercy of a shared machine.
  const copies: Array<Awaited<ReturnType<typeof raw>>> = [];
  const snaps: Array<Awaited<ReturnType<typeof read>>> = [];
  for (let r = 0; r < ROUNDS; r++) {
    copies.push(await raw());
    snaps.push(await read());
  }
  const rssPeak = rss.stop();
  const rssBefore = rss.before;
  const copy = median(copies);
  const snap = median(snaps);

  const mbps = (bytes: number, ms: number) => bytes / MB / (ms / 1000);
  const ratio = copy.ms / snap.ms;
  const growth = (rssPeak - rssBefore) / MB;
  console.log(
    `routing snapshot of ${size.prefixes} prefixes, ${size.operators} operators, ${size.rules} rules; median of ${ROUNDS} alternating reads per side`,
  );
  console.log(
    `  GET /routing/snapshot: ${(snap.bytes / MB).toFixed(1)} MB in ${Math.round(snap.ms)} ms (${mbps(snap.bytes, snap.ms).toFixed(1)} MB/s), first byte after ${Math.round(snap.firstByteMs)} ms`,
  );
  console.log(
    `  raw COPY TO STDOUT of the same entries: ${(copy.bytes / MB).toFixed(1)} MB in ${Math.round(copy.ms)} ms (${mbps(copy.bytes, copy.ms).toFixed(1)} MB/s)`,
  );
  console.log(`  ratio (time, raw / snapshot) ${ratio.toFixed(2)} (goal ≥ 0.5): ${ratio >= 0.5 ? 'met' : 'NOT met'}`);
  console.log(
    `  peak RSS growth ${growth.toFixed(0)} MB (${(rssBefore / MB).toFixed(0)} → ${(rssPeak / MB).toFixed(0)} MB; goal < 256 MB): ${growth < 256 ? 'met' : 'NOT met'}`,
  );
  await consumerHelper(url, size.prefixes);
}

/** The consumer helper loading the snapshot and explaining numbers, beside a bare Map look-up. */
async function consumerHelper(url: string, prefixes: number): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const state = new RoutingState(() => Promise.reject(new Error('no event is followed here')));
  const start = performance.now();
  const res = await fetch(url);
  await state.loadSnapshot(ndjsonRecords<SnapshotRecord>(res.body as unknown as AsyncIterable<Uint8Array>));
  const loadMs = performance.now() - start;
  gc();
  const heapMb = (process.memoryUsage().heapUsed - heapBefore) / MB;

  // The floor: the same entries in one Map, a number's prefixes tried longest first.
  const bare = new Map<string, string>();
  for (const [id, table] of state.tables) for (const p of table.prefixes) bare.set(p, id);
  const numbers = Array.from(
    { length: 20_000 },
    () => `254${String(randomInt(1, prefixes)).padStart(8, '0')}${randomInt(1000, 9999)}`,
  );
  const at = new Date();
  const timed = (fn: (n: string) => unknown) => {
    for (const n of numbers.slice(0, 2000)) fn(n); // warm-up
    const t = performance.now();
    for (const n of numbers) fn(n);
    return ((performance.now() - t) * 1000) / numbers.length;
  };
  const explainUs = timed((n) => state.explain(n, at));
  const bareUs = timed((n) =>
    prefixesOf(n)
      .reverse()
      .find((p) => bare.has(p)),
  );
  const ranks = state.explain(numbers[0]!, at).ranks;
  console.log(
    `consumer helper (src/consumer/routing-state.ts) on that snapshot, in this process; no goal set (they size a routing engine)`,
  );
  console.log(
    `  loaded in ${Math.round(loadMs)} ms: ${state.operators.size} operators, ${state.tables.size} tables; heap growth ${heapMb.toFixed(0)} MB`,
  );
  console.log(
    `  explain from its index: ${explainUs.toFixed(1)} µs per number (a sample: ${ranks.length} rank(s), ${ranks[0]?.groups[0]?.members.length ?? 0} candidates first)`,
  );
  console.log(
    `  bare longest-prefix look-up in a Map of the same entries: ${bareUs.toFixed(2)} µs per number; ratio ${(bareUs / explainUs).toFixed(3)}`,
  );
}

runBench(main);
