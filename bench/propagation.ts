/**
 * Config-change propagation on the real local stack (`npm run stack:up`): from `PATCH
 * /v1/admin/operators/{id}` sent to the `operator.config.updated` event received by a NATS
 * subscriber, through the service's own path (Koa, JWT, commitChange, outbox NOTIFY, relay,
 * JetStream). Printed beside the floor measured in the same run: a bare Koa round trip + a
 * one-row PostgreSQL commit + a NATS publish-to-receive hop, and the ratio.
 *
 * Usage: `npm run bench:propagation`. BENCH_N (changes per phase, default 1000), BENCH_RATE
 * (paced changes per second, default 100), BENCH_BURST_CONCURRENCY (requests in flight in the
 * burst, default 50), BENCH_OPERATORS (default 50).
 *
 * The operators live in a throwaway database operator_mgmt_bench_<id> (dropped at the end, on
 * failure and on SIGINT/SIGTERM too). Their events go to the local OPERATOR_EVENTS stream, as
 * the tests' events do: they concern operators that exist nowhere else.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import Koa from 'koa';
import { connectNats } from '../src/clients/nats';
import { inTransaction, type Db } from '../src/clients/postgres';
import type { EventEnvelope } from '../src/events/envelope';
import type { Config } from '../src/platform/config';
import { insertActiveOperators, intEnv, listen, percentile, startBenchService, urlOf } from './bench-service';
import { runBench, type Cleanup } from './cleanup';

const RECEIPT_TIMEOUT_MS = 30_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Phase {
  name: string;
  latencies: number[];
  /** PATCH sent to its answer read: the part the admin sees. */
  answers: number[];
  missing: number;
  duplicates: number;
  wallMs: number;
}

interface Floor {
  koa: number[];
  pg: number[];
  nats: number[];
}

async function main(cleanup: Cleanup): Promise<void> {
  const n = intEnv('BENCH_N', 1000);
  const rate = intEnv('BENCH_RATE', 100);
  const concurrency = intEnv('BENCH_BURST_CONCURRENCY', 50);
  const operatorCount = intEnv('BENCH_OPERATORS', 50);
  const { id, config, resources, adminUrl, auth } = await startBenchService(cleanup);
  const ids = Array.from({ length: operatorCount }, () => randomUUID());
  await insertActiveOperators(resources, ids);

  // The subscriber: a plain core subscription, as fast as a peer can hear of a change.
  const sub = await connectNats(config.nats, 'operator-management-bench-subscriber');
  cleanup.add('close the subscriber', () => sub.drain());
  const received = new Map<string, number[]>();
  const waiters = new Map<string, () => void>();
  sub.subscribe('operator.config.updated', {
    callback: (err, msg) => {
      if (err) return;
      const at = performance.now();
      const event = msg.json<EventEnvelope<{ operator: { name: string } }>>();
      const key = event.data.operator.name;
      received.set(key, [...(received.get(key) ?? []), at]);
      waiters.get(key)?.();
    },
  });
  await sub.flush();

  /** One PATCH; resolves with the latency to the event's receipt (or undefined if it never came). */
  const change = async (key: string, operatorId: string): Promise<{ answered: number; received?: number }> => {
    const arrived = new Promise<void>((resolve) => waiters.set(key, resolve));
    const start = performance.now();
    const res = await fetch(`${adminUrl}/operators/${operatorId}`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ name: key }),
    });
    if (res.status !== 200) throw new Error(`PATCH answered ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
    const answered = performance.now() - start;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, RECEIPT_TIMEOUT_MS)));
    await Promise.race([arrived, timeout]);
    clearTimeout(timer);
    waiters.delete(key);
    const at = received.get(key)?.[0];
    return { answered, received: at === undefined ? undefined : at - start };
  };

  const runPhase = async (
    name: string,
    count: number,
    schedule: (run: (i: number) => Promise<void>) => Promise<void>,
  ) => {
    const latencies: number[] = [];
    const answers: number[] = [];
    let missing = 0;
    const keys: string[] = [];
    const start = performance.now();
    await schedule(async (i) => {
      const key = `bench-${id}-${name}-${i}`;
      keys.push(key);
      const { answered, received: ms } = await change(key, ids[i % ids.length] as string);
      answers.push(answered);
      if (ms === undefined) missing++;
      else latencies.push(ms);
    });
    const wallMs = performance.now() - start;
    await sleep(500); // a late duplicate would show up here
    const duplicates = keys.filter((k) => (received.get(k)?.length ?? 0) > 1).length;
    return { name, latencies, answers, missing, duplicates, wallMs } satisfies Phase;
  };

  // Warm-up: JIT, connections, prepared paths.
  await runPhase('warmup', 100, async (run) => {
    for (let i = 0; i < 100; i++) await run(i);
  });

  const paced = await runPhase(`paced ${rate}/s`, n, async (run) => {
    const t0 = performance.now();
    const all: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      const due = t0 + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      all.push(run(i));
    }
    await Promise.all(all);
  });

  const burst = await runPhase(`burst x${concurrency}`, n, async (run) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) await run(next++);
      }),
    );
  });

  const floor = await measureFloor(config, resources.db, n, cleanup, id);
  report([paced, burst], floor, n);
  if ([paced, burst].some((p) => p.missing > 0 || p.duplicates > 0)) {
    throw new Error('some changes never arrived, or arrived twice (see the table)');
  }
}

/** The same run's floor, each part measured alone, sequentially, n times. */
async function measureFloor(config: Config, db: Db, n: number, cleanup: Cleanup, id: string): Promise<Floor> {
  const bare = new Koa();
  bare.use((ctx) => {
    ctx.body = { ok: true };
  });
  const server = await listen(bare);
  cleanup.add('close the bare Koa app', () => new Promise((r) => server.close(r)));
  const url = `${urlOf(server)}/v1/admin/operators/x`;
  const koa: number[] = [];
  for (let i = 0; i < n + 100; i++) {
    const start = performance.now();
    const res = await fetch(url, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{}' });
    await res.arrayBuffer();
    if (i >= 100) koa.push(performance.now() - start);
  }

  await db.query('CREATE TABLE bench_floor (id int PRIMARY KEY, n bigint NOT NULL)');
  await db.query('INSERT INTO bench_floor VALUES (1, 0)');
  const pg: number[] = [];
  for (let i = 0; i < n + 100; i++) {
    const start = performance.now();
    await inTransaction(db, (tx) => tx.query('UPDATE bench_floor SET n = n + 1 WHERE id = 1'));
    if (i >= 100) pg.push(performance.now() - start);
  }

  const pubConn = await connectNats(config.nats, 'operator-management-bench-floor-pub');
  const subConn = await connectNats(config.nats, 'operator-management-bench-floor-sub');
  cleanup.add('close the floor NATS connections', () => Promise.all([pubConn.drain(), subConn.drain()]));
  const subject = `bench.${id}.floor`;
  let arrived: (() => void) | undefined;
  subConn.subscribe(subject, { callback: () => arrived?.() });
  await subConn.flush();
  const nats: number[] = [];
  for (let i = 0; i < n + 100; i++) {
    const got = new Promise<void>((resolve) => (arrived = resolve));
    const start = performance.now();
    pubConn.publish(subject, JSON.stringify({ i }));
    await got;
    if (i >= 100) nats.push(performance.now() - start);
  }
  return { koa, pg, nats };
}

function report(phases: Phase[], floor: Floor, n: number): void {
  const f50 = percentile(floor.koa, 50) + percentile(floor.pg, 50) + percentile(floor.nats, 50);
  const f99 = percentile(floor.koa, 99) + percentile(floor.pg, 99) + percentile(floor.nats, 99);
  const ms = (v: number) => v.toFixed(2);
  console.log(
    `floor (n=${n} each): Koa round trip p50 ${ms(percentile(floor.koa, 50))} / p99 ${ms(percentile(floor.koa, 99))} ms, ` +
      `PG one-row commit p50 ${ms(percentile(floor.pg, 50))} / p99 ${ms(percentile(floor.pg, 99))} ms, ` +
      `NATS pub->recv p50 ${ms(percentile(floor.nats, 50))} / p99 ${ms(percentile(floor.nats, 99))} ms\n`,
  );
  const header = [
    'phase',
    'N',
    'changes/s',
    'answer p50',
    'answer p99',
    'p50 ms',
    'p99 ms',
    'max ms',
    'floor p50',
    'floor p99',
    'p50/floor',
    'p99/floor',
    'missing',
    'dupes',
  ];
  const rows = phases.map((p) => [
    p.name,
    String(p.latencies.length + p.missing),
    ((p.latencies.length * 1000) / p.wallMs).toFixed(0),
    ms(percentile(p.answers, 50)),
    ms(percentile(p.answers, 99)),
    ms(percentile(p.latencies, 50)),
    ms(percentile(p.latencies, 99)),
    ms(Math.max(...p.latencies)),
    ms(f50),
    ms(f99),
    (percentile(p.latencies, 50) / f50).toFixed(1),
    (percentile(p.latencies, 99) / f99).toFixed(1),
    String(p.missing),
    String(p.duplicates),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padStart(widths[i] ?? 0)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
  console.log(
    '\nfloor = bare Koa round trip + one-row PostgreSQL commit + NATS publish-to-receive (each percentile summed)',
  );
  // The goals of the speed issue that this bench can judge (the burst's floor rate at the same
  // concurrency is not measured yet).
  const verdict = (ok: boolean) => (ok ? 'goal met' : 'goal not met');
  const [paced, burst] = phases;
  const lost = (p: Phase) => p.missing + p.duplicates;
  if (paced) {
    const x = percentile(paced.latencies, 99) / f99;
    console.log(
      `paced: event p99 ${x.toFixed(1)}× the floor's p99 (goal ≤ 5×): ${verdict(x <= 5 && lost(paced) === 0)}`,
    );
  }
  if (burst) {
    const p99 = percentile(burst.latencies, 99);
    console.log(`burst: event p99 ${p99.toFixed(1)} ms (goal ≤ 100 ms): ${verdict(p99 <= 100 && lost(burst) === 0)}`);
  }
}

runBench(main);
