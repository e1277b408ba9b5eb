/**
 * Admin reads on the real local stack (`npm run stack:up`): `GET /v1/admin/operators/{id}` and
 * `GET /v1/admin/operators/{id}/routing-rules` through the whole admin app (JWT check, request
 * log, validation, problem mapping, service) at a fixed concurrency, beside a bare Koa route
 * running the same SQL (the same src/db functions) in the same run, and the ratio.
 *
 * Usage: `npm run bench:admin-read`. BENCH_N (requests per route and side, default 5000),
 * BENCH_CONCURRENCY (default 16), BENCH_OPERATORS (default 100, each with 10 rules).
 * Goal: throughput ≥ 0.6 of the bare route. Throwaway database, dropped at the end.
 */
import { randomUUID } from 'node:crypto';
import Koa from 'koa';
import { findOperator } from '../src/db/operators';
import { listRoutingRules } from '../src/db/routing-rules';
import { ACTOR, insertActiveOperators, intEnv, listen, loadGets, startBenchService, urlOf } from './bench-service';
import { runBench, type Cleanup } from './cleanup';

async function main(cleanup: Cleanup): Promise<void> {
  const n = intEnv('BENCH_N', 5000);
  const concurrency = intEnv('BENCH_CONCURRENCY', 16);
  const operatorCount = intEnv('BENCH_OPERATORS', 100);
  const s = await startBenchService(cleanup);
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

  // The floor: the same SQL behind a bare Koa route, no auth, validation or error mapping.
  const bare = new Koa();
  bare.use(async (ctx) => {
    const [, , id, rules] = ctx.path.split('/');
    const operator = await findOperator(s.resources.db, id ?? '');
    ctx.body = rules
      ? { version: operator?.version, routingRules: await listRoutingRules(s.resources.db, id ?? '') }
      : operator;
  });
  const server = await listen(bare);
  cleanup.add('close the bare Koa app', () => new Promise((r) => server.close(r)));
  const bareUrl = urlOf(server);

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
    const apiUrls = ids.map((id) => `${s.adminUrl}${route.path(id)}`);
    const bareUrls = ids.map((id) => `${bareUrl}${route.path(id)}`);
    // Warm-up of both sides: JIT, pools, prepared statements.
    await loadGets((i) => apiUrls[i % apiUrls.length] as string, 500, concurrency, s.auth);
    await loadGets((i) => bareUrls[i % bareUrls.length] as string, 500, concurrency, {});
    const api = await loadGets((i) => apiUrls[i % apiUrls.length] as string, n, concurrency, s.auth);
    const floor = await loadGets((i) => bareUrls[i % bareUrls.length] as string, n, concurrency, {});
    const ratio = api.perSecond / floor.perSecond;
    console.log(
      `| ${route.name} | ${api.perSecond.toFixed(0)} | ${api.p50.toFixed(1)} / ${api.p99.toFixed(1)} | ${floor.perSecond.toFixed(0)} | ${floor.p50.toFixed(1)} / ${floor.p99.toFixed(1)} | ${ratio.toFixed(2)}: ${ratio >= 0.6 ? 'met' : 'NOT met'} |`,
    );
  }
}

runBench(main);
