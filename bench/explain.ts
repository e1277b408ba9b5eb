/**
 * Route explain on the real local stack (`npm run stack:up`): 1,000,000 prefixes in 1,000 tables,
 * 1,000 operators and 10,000 rules; `GET /v1/admin/routing/explain` for random numbers through
 * the whole admin app at a fixed concurrency, beside the bare SQL of one longest-prefix lookup
 * (the index probe every routing decision needs) behind a bare Koa route, in the same run. Each
 * server runs in a process of its own (bench/serve.ts); the load is generated in this one.
 *
 * Usage: `npm run bench:explain`. BENCH_N (requests per side, default 3000), BENCH_CONCURRENCY
 * (default 4: an admin tool, not the routing path), BENCH_PREFIXES, BENCH_OPERATORS, BENCH_RULES, BENCH_TABLES. Goals: p99 under 10
 * ms, ≥ 0.5 of the bare lookup's rate. Throwaway database, dropped at the end.
 */
import { randomInt } from 'node:crypto';
import {
  compareLoads,
  intEnv,
  openBenchDatabase,
  routingDataSize,
  seedRoutingData,
  spawnServerProcess,
  type LoadSide,
} from './bench-service';
import { runBench, type Cleanup } from './cleanup';
import { cpuFrom, pidsNamed } from './cpu';

/**
 * CPU µs per request in each process, over a pass of `side` alone: where the cost goes (both
 * sides keep the cores busy, so the rate ratio is the inverse ratio of these sums).
 */
async function cpuPerRequest(side: LoadSide, serverPid: number, n: number, concurrency: number): Promise<string> {
  const used = cpuFrom({
    server: () => [serverPid],
    PostgreSQL: () => pidsNamed('postgres'),
    Redis: () => pidsNamed('redis-server'),
    load: () => [process.pid],
  });
  await compareLoads(side, side, n, concurrency, 1);
  const perRequest = Object.entries(used()).map(([name, ms]) => [name, (ms * 1000) / (2 * n)] as const);
  const total = perRequest.reduce((sum, [, us]) => sum + us, 0);
  return `${perRequest.map(([name, us]) => `${name} ${us.toFixed(0)}`).join(', ')} (${total.toFixed(0)} in all)`;
}

async function main(cleanup: Cleanup): Promise<void> {
  const n = intEnv('BENCH_N', 3000);
  const concurrency = intEnv('BENCH_CONCURRENCY', 4);
  const size = routingDataSize();
  const s = await openBenchDatabase(cleanup);
  await seedRoutingData(s.resources, size);
  // Numbers that fall in the tables: 254, eight digits within the seeded range, four more.
  const numbers = Array.from(
    { length: 1000 },
    () => `254${String(randomInt(1, size.prefixes)).padStart(8, '0')}${randomInt(1000, 9999)}`,
  );
  // Both servers in processes of their own, the load generated here.
  const admin = await spawnServerProcess(cleanup, 'admin', s.config.postgres.url);
  const adminUrl = `${admin.url}/v1/admin`;
  const bareServer = await spawnServerProcess(cleanup, 'bare-longest-prefix', s.config.postgres.url);
  const bareUrlBase = bareServer.url;

  const explainUrl = (i: number) => `${adminUrl}/routing/explain?destination=${numbers[i % numbers.length]}`;
  const bareUrl = (i: number) => `${bareUrlBase}/${numbers[i % numbers.length]}`;
  const explain = { url: explainUrl, headers: s.auth };
  const bare = { url: bareUrl, headers: {} };
  // Warm-up: both servers' code compiled by the JIT, their pools full and the pages they read cached.
  await compareLoads(explain, bare, n, concurrency, 2);
  const [api, floor] = await compareLoads(explain, bare, n, concurrency);
  const ratio = api.perSecond / floor.perSecond;
  const explainCpu = await cpuPerRequest(explain, admin.pid, n / 2, concurrency);
  const bareCpu = await cpuPerRequest(bare, bareServer.pid, n / 2, concurrency);
  const sample = (await (await fetch(explainUrl(0), { headers: s.auth })).json()) as { ranks: unknown[] };
  console.log(
    `route explain over ${size.prefixes} prefixes, ${size.operators} operators, ${size.rules} rules; ${concurrency} in flight`,
  );
  console.log(`  a sample answer holds ${sample.ranks.length} ranks`);
  console.log(
    `  GET /routing/explain:        ${api.perSecond.toFixed(0)} req/s, p50 ${api.p50.toFixed(1)} ms, p99 ${api.p99.toFixed(1)} ms`,
  );
  console.log(
    `  bare longest-prefix lookup:  ${floor.perSecond.toFixed(0)} req/s, p50 ${floor.p50.toFixed(1)} ms, p99 ${floor.p99.toFixed(1)} ms`,
  );
  console.log(`  CPU µs per request, a pass of each alone: explain: ${explainCpu}`);
  console.log(`                                           bare:    ${bareCpu}`);
  console.log(
    `  p99 under 10 ms: ${api.p99 < 10 ? 'met' : 'NOT met'}; ratio ${ratio.toFixed(2)} (goal ≥ 0.5): ${ratio >= 0.5 ? 'met' : 'NOT met'}`,
  );
}

runBench(main);
