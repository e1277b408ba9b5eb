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
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { connectNats } from '../src/clients/nats';
import type { EventEnvelope } from '../src/events/envelope';
import { insertActiveOperators, intEnv, openBenchDatabase, percentile, send, spawnServer } from './bench-service';
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

async function main(cleanup: Cleanup): Promise<void> {
  const n = intEnv('BENCH_N', 1000);
  const rate = intEnv('BENCH_RATE', 100);
  const concurrency = intEnv('BENCH_BURST_CONCURRENCY', 50);
  const operatorCount = intEnv('BENCH_OPERATORS', 50);
  // The relay runs in the service's process, not here.
  const { id, config, resources, auth } = await openBenchDatabase(cleanup, { relay: false });
  const ids = Array.from({ length: operatorCount }, () => randomUUID());
  await insertActiveOperators(resources, ids);
  await resources.db.query('CREATE TABLE bench_floor (id int PRIMARY KEY, n bigint NOT NULL)');
  await resources.db.query('INSERT INTO bench_floor SELECT g, 0 FROM generate_series(0, $1 - 1) AS g', [operatorCount]);
  const floorSubject = `bench.${id}.floor`;
  // The service and its floor in processes of their own; the load and the subscriber here.
  const adminUrl = `${await spawnServer(cleanup, 'admin-and-relay', config.postgres.url)}/v1/admin`;
  const floorUrl = await spawnServer(cleanup, 'floor-of-a-change', config.postgres.url, {
    BENCH_FLOOR_SUBJECT: floorSubject,
  });

  // The subscriber: a plain core subscription, as fast as a peer can hear of a change.
  const sub = await connectNats(config.nats, 'operator-management-bench-subscriber');
  cleanup.add('close the subscriber', () => sub.drain());
  const received = new Map<string, number[]>();
  const waiters = new Map<string, () => void>();
  const heard = (key: string) => {
    const at = performance.now();
    received.set(key, [...(received.get(key) ?? []), at]);
    waiters.get(key)?.();
  };
  sub.subscribe('operator.config.updated', {
    callback: (err, msg) => {
      if (!err) heard(msg.json<EventEnvelope<{ operator: { name: string } }>>().data.operator.name);
    },
  });
  sub.subscribe(floorSubject, {
    callback: (err, msg) => {
      if (!err) heard(msg.json<{ key: string }>().key);
    },
  });
  await sub.flush();

  // Kept-alive connections through node:http, as every other load here: fetch (undici) cost this
  // process, on the same cores as the service, about five times the CPU per request (480–700 µs
  // against 80–190 µs, 50 in flight against a trivial local server).
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  cleanup.add('close the load connections', async () => agent.destroy());

  /** One PATCH; its answer time and the latency to its event's receipt (undefined if it never came). */
  const change = async (url: string, key: string): Promise<{ answered: number; received?: number }> => {
    const arrived = new Promise<void>((resolve) => waiters.set(key, resolve));
    const start = performance.now();
    const res = await send(agent, url, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ name: key }),
    });
    if (res.status !== 200) throw new Error(`PATCH answered ${res.status}: ${res.body}`);
    const answered = performance.now() - start;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, RECEIPT_TIMEOUT_MS)));
    await Promise.race([arrived, timeout]);
    clearTimeout(timer);
    waiters.delete(key);
    const at = received.get(key)?.[0];
    return { answered, received: at === undefined ? undefined : at - start };
  };

  /** Change i of a phase, on the service (an operator's name) or on its floor (a slot's row). */
  type Target = (i: number) => string;
  const service: Target = (i) => `${adminUrl}/operators/${ids[i % ids.length]}`;
  const floor: Target = (i) => `${floorUrl}/${i % operatorCount}`;

  const runPhase = async (name: string, count: number, target: Target, schedule: Schedule) => {
    const latencies: number[] = [];
    const answers: number[] = [];
    let missing = 0;
    const keys: string[] = [];
    const start = performance.now();
    await schedule(count, async (i) => {
      const key = `bench-${id}-${name}-${i}`;
      keys.push(key);
      const { answered, received: ms } = await change(target(i), key);
      answers.push(answered);
      if (ms === undefined) missing++;
      else latencies.push(ms);
    });
    const wallMs = performance.now() - start;
    await sleep(500); // a late duplicate would show up here
    const duplicates = keys.filter((k) => (received.get(k)?.length ?? 0) > 1).length;
    return { name, latencies, answers, missing, duplicates, wallMs } satisfies Phase;
  };

  const oneByOne: Schedule = async (count, run) => {
    for (let i = 0; i < count; i++) await run(i);
  };
  const paced: Schedule = async (count, run) => {
    const t0 = performance.now();
    const all: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const wait = t0 + (i * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
      all.push(run(i));
    }
    await Promise.all(all);
  };
  const burst: Schedule = async (count, run) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) await run(next++);
      }),
    );
  };

  // Warm-up: JIT, connections, prepared paths, on both servers.
  await runPhase('warmup', 100, service, oneByOne);
  await runPhase('floor warmup', 100, floor, oneByOne);

  // Each burst right after a short one of its own: a pool idle for 10 s (the other side's paced
  // phase) has closed its PostgreSQL connections, and the first burst after it would measure
  // connection set-up on one side only.
  const warmBurst = async (name: string, target: Target) => {
    await runPhase(`${name} warmup`, 2 * concurrency, target, burst);
    return runPhase(name, n, target, burst);
  };
  const phases = {
    paced: await runPhase(`paced ${rate}/s`, n, service, paced),
    pacedFloor: await runPhase(`floor paced ${rate}/s`, n, floor, paced),
    burst: await warmBurst(`burst x${concurrency}`, service),
    burstFloor: await warmBurst(`floor burst x${concurrency}`, floor),
  };
  report(phases);
  if (Object.values(phases).some((p) => p.missing > 0 || p.duplicates > 0)) {
    throw new Error('some changes never arrived, or arrived twice (see the table)');
  }
}

type Schedule = (count: number, run: (i: number) => Promise<void>) => Promise<void>;

const perSecond = (p: Phase) => (p.latencies.length * 1000) / p.wallMs;

function report(phases: Record<'paced' | 'pacedFloor' | 'burst' | 'burstFloor', Phase>): void {
  const ms = (v: number) => v.toFixed(2);
  const header = [
    'phase',
    'N',
    'changes/s',
    'answer p50',
    'answer p99',
    'event p50',
    'event p99',
    'max',
    'missing',
    'dupes',
  ];
  const rows = Object.values(phases).map((p) => [
    p.name,
    String(p.latencies.length + p.missing),
    perSecond(p).toFixed(0),
    ms(percentile(p.answers, 50)),
    ms(percentile(p.answers, 99)),
    ms(percentile(p.latencies, 50)),
    ms(percentile(p.latencies, 99)),
    ms(Math.max(...p.latencies)),
    String(p.missing),
    String(p.duplicates),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padStart(widths[i] ?? 0)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
  console.log(
    '\ntimes in ms, from the PATCH sent; floor = bare Koa + one-row PostgreSQL commit + core NATS publish, in a process of its own, under the same load',
  );
  // The speed issue's goals.
  const verdict = (ok: boolean) => (ok ? 'goal met' : 'goal not met');
  const { paced, pacedFloor, burst, burstFloor } = phases;
  const whole = (p: Phase) => p.missing + p.duplicates === 0;
  const x = percentile(paced.latencies, 99) / percentile(pacedFloor.latencies, 99);
  console.log(`paced: event p99 ${x.toFixed(1)}× the floor's p99 (goal ≤ 5×): ${verdict(x <= 5 && whole(paced))}`);
  const share = perSecond(burst) / perSecond(burstFloor);
  console.log(
    `burst: ${perSecond(burst).toFixed(0)} changes/s, ${share.toFixed(2)} of the floor's ${perSecond(burstFloor).toFixed(0)} (goal ≥ 0.3): ${verdict(share >= 0.3 && whole(burst))}`,
  );
  const p99 = percentile(burst.latencies, 99);
  // The floor's own p99 beside it: at a fixed number in flight it says what these cores allow.
  const floorP99 = percentile(burstFloor.latencies, 99);
  console.log(
    `burst: event p99 ${p99.toFixed(1)} ms (goal ≤ 100 ms; the floor's own ${floorP99.toFixed(1)} ms): ${verdict(p99 <= 100 && whole(burst))}`,
  );
}

runBench(main);
