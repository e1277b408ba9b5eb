/**
 * Admin reads on the real local stack (`npm run stack:up`): `GET /v1/admin/operators/{id}` and
 * `GET /v1/admin/operators/{id}/routing-rules` through the whole admin app (JWT check, request
 * log, validation, problem mapping, service) at a fixed concurrency, beside a bare Koa route
 * running the same SQL (the same src/db functions) in the same run, and the ratio. Each server
 * runs in a process of its own (bench/serve.ts), the load is generated in this one, in
 * alternating rounds so that both sides see the same drift of a shared machine.
 *
 * Usage: `npm run bench:admin-read`. BENCH_N (requests per route and side, default 5000),
 * BENCH_CONCURRENCY (default 16), BENCH_OPERATORS (default 100, each with 10 rules).
 * Goal: throughput ≥ 0.6 of the bare route. Throwaway database, dropped at the end.
 */
import { randomUUID } from 'node:crypto';
import { ACTOR, compareLoads, insertActiveOperators, intEnv, openBenchDatabase, spawnServer } from './bench-service';
import { runBench, type Cleanup } from './cleanup';

async function main(cleanup: Cleanup): Promise<void> {
  const n = intEnv('BENCH_N', 5000);
  const concurrency = intEnv('BENCH_CONCURRENCY', 16);
  const operatorCount = intEnv('BENCH_OPERATORS', 100);
  const s = await openBenchDatabase(cleanup, { relay: false });
  const ids = Array.from({ length: operatorCount }, () => randomUUID());
  await insertActiveOperators(s.resources, ids);
  await s.resources.db.query(
    `INSERT INTO ops.tps_limits (id, operator_id, tps_cap, burst_window_ms, enforcement_mode, created_by, updated_by)
     SELECT gen_random_uuid(), id, 100, 1000, 'hard', $2, $2 FROM unnest($1::uuid[]) AS id`,
    [ids, ACTOR],
  );
  await s.resources.db.query(
    `INSERT INTO ops.routing_rules (id, operator_id, prefixes, priority, weight, cost_per_segment, currency,
                                    created_by, updated_by)
     SELECT gen_random_uuid(), id, ARRAY['2547' || k], k, 100, 0.0125, 'EUR', $2, $2
       FROM unnest($1::uuid[]) AS id, generate_series(1, 10) AS k`,
    [ids, ACTOR],
  );

  // The admin app and its floor (the same SQL behind a bare Koa route) in processes of their own,
  // the load generated here.
  const adminUrl = `${await spawnServer(cleanup, 'admin', s.config.postgres.url)}/v1/admin`;
  const bareUrl = await spawnServer(cleanup, 'bare-admin-read', s.config.postgres.url);

  const routes = [
    { name: 'GET /operators/{id}', path: (id: string) => `/operators/${id}` },
    { name: 'GET /operators/{id}/routing-rules', path: (id: string) => `/operators/${id}/routing-rules` },
  ];
  console.log(`admin reads: ${n} requests per route and side, ${concurrency} in flight, ${operatorCount} operators\n`);
  console.log(
    '| route | admin API req/s | p50 / p99 ms | bare Koa + same SQL req/s | p50 / p99 ms | ratio (goal ≥ 0.6) |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const route of routes) {
    const apiUrls = ids.map((id) => `${adminUrl}${route.path(id)}`);
    const bareUrls = ids.map((id) => `${bareUrl}${route.path(id)}`);
    const api = { url: (i: number) => apiUrls[i % apiUrls.length] as string, headers: s.auth };
    const bare = { url: (i: number) => bareUrls[i % bareUrls.length] as string, headers: {} };
    // Warm-up of both sides: JIT, pools, prepared statements.
    await compareLoads(api, bare, 1000, concurrency, 2);
    const [admin, floor] = await compareLoads(api, bare, n, concurrency);
    const ratio = admin.perSecond / floor.perSecond;
    console.log(
      `| ${route.name} | ${admin.perSecond.toFixed(0)} | ${admin.p50.toFixed(1)} / ${admin.p99.toFixed(1)} | ${floor.perSecond.toFixed(0)} | ${floor.p50.toFixed(1)} / ${floor.p99.toFixed(1)} | ${ratio.toFixed(2)}: ${ratio >= 0.6 ? 'met' : 'NOT met'} |`,
    );
  }
}

runBench(main);
