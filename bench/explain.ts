/**
 * Route explain on the real local stack (`npm run stack:up`): 1,000,000 prefixes in 1,000 tables,
 * 1,000 operators and 10,000 rules; `GET /v1/admin/routing/explain` for random numbers through
 * the whole admin app at a fixed concurrency, beside the bare SQL of one longest-prefix lookup
 * (the index probe every routing decision needs) behind a bare Koa route, in the same run.
 *
 * Usage: `npm run bench:explain`. BENCH_N (requests per side, default 3000), BENCH_CONCURRENCY
 * (default 4: an admin tool, not the routing path), BENCH_PREFIXES, BENCH_OPERATORS, BENCH_RULES, BENCH_TABLES. Goals: p99 under 10
 * ms, ≥ 0.5 of the bare lookup's rate. Throwaway database, dropped at the end.
 */
import { randomInt } from 'node:crypto';
import Koa from 'koa';
import { prefixesOf } from '../src/domain/route-order';
import { intEnv, listen, loadGets, routingDataSize, seedRoutingData, startBenchService, urlOf } from './bench-service';
import { runBench, type Cleanup } from './cleanup';

async function main(cleanup: Cleanup): Promise<void> {
  const n = intEnv('BENCH_N', 3000);
  const concurrency = intEnv('BENCH_CONCURRENCY', 4);
  const size = routingDataSize();
  const s = await startBenchService(cleanup);
  await seedRoutingData(s.resources, size);
  // Numbers that fall in the tables: 254, eight digits within the seeded range, four more.
  const numbers = Array.from(
    { length: 1000 },
    () => `254${String(randomInt(1, size.prefixes)).padStart(8, '0')}${randomInt(1000, 9999)}`,
  );

  const bare = new Koa();
  bare.use(async (ctx) => {
    const destination = ctx.path.slice(1);
    const { rows } = await s.resources.db.query({
      name: 'bench-longest-prefix',
      text: `SELECT prefix_table_id, prefix FROM ops.prefix_table_entries
              WHERE deleted_at IS NULL AND prefix = ANY($1) ORDER BY length(prefix) DESC LIMIT 1`,
      values: [prefixesOf(destination)],
    });
    ctx.body = rows[0] ?? null;
  });
  const server = await listen(bare);
  cleanup.add('close the bare Koa app', () => new Promise((r) => server.close(r)));

  const explainUrl = (i: number) => `${s.adminUrl}/routing/explain?destination=${numbers[i % numbers.length]}`;
  const bareUrl = (i: number) => `${urlOf(server)}/${numbers[i % numbers.length]}`;
  await loadGets(explainUrl, 300, concurrency, s.auth);
  await loadGets(bareUrl, 300, concurrency, {});
  const api = await loadGets(explainUrl, n, concurrency, s.auth);
  const floor = await loadGets(bareUrl, n, concurrency, {});
  const ratio = api.perSecond / floor.perSecond;
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
  console.log(
    `  p99 under 10 ms: ${api.p99 < 10 ? 'met' : 'NOT met'}; ratio ${ratio.toFixed(2)} (goal ≥ 0.5): ${ratio >= 0.5 ? 'met' : 'NOT met'}`,
  );
}

runBench(main);
