import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import type Koa from 'koa';
import { createAdminApp } from '../src/api/admin-app';
import { loadConfig, type Config } from '../src/platform/config';
import { createLogger } from '../src/platform/logger';
import { openResources, type Resources } from '../src/platform/resources';
import { createAdminServices } from '../src/services';
import { createBenchDatabase } from './bench-database';
import type { Cleanup } from './cleanup';

/** What every admin-API benchmark starts from: a throwaway database and the admin API on it, in this process. */

export const ACTOR = 'system:bench';

export interface BenchService {
  id: string;
  config: Config;
  resources: Resources;
  adminUrl: string;
  /** Headers of an admin request: the bearer token. */
  auth: Record<string, string>;
}

export async function startBenchService(cleanup: Cleanup): Promise<BenchService> {
  const id = randomBytes(4).toString('hex');
  const base = loadConfig();
  const secret = base.jwt.secret;
  if (!secret) throw new Error('the bench signs its admin token with JWT_SECRET: set it (or unset JWT_JWKS_URI)');
  const log = createLogger('warn', 'bench');
  const benchUrl = await createBenchDatabase(base, cleanup, `operator_mgmt_bench_${id}`);
  const config: Config = { ...base, postgres: { ...base.postgres, url: benchUrl } };
  const resources = await openResources(config, log);
  cleanup.add('close the service clients', () => resources.close());
  resources.relay.start(config.nats.outboxPollMs);
  const app = createAdminApp({
    config,
    db: resources.db,
    log,
    ...createAdminServices(resources, config.temporal, log),
  });
  const server = await listen(app);
  cleanup.add('close the admin API', () => new Promise((r) => server.close(r)));
  const token = jwt.sign({ sub: ACTOR, scope: 'admin' }, secret, { expiresIn: '1h' });
  return { id, config, resources, adminUrl: `${urlOf(server)}/v1/admin`, auth: { authorization: `Bearer ${token}` } };
}

export function listen(app: Koa | ReturnType<typeof createAdminApp>): Promise<Server> {
  return new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
}

export const urlOf = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

export function intEnv(name: string, fallback: number): number {
  const raw = process.env[name] ?? String(fallback);
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/** ACTIVE operators at version 1, written straight into the bench database (no workflow needed). */
export async function insertActiveOperators(resources: Resources, ids: readonly string[]): Promise<void> {
  await resources.db.query(
    `INSERT INTO ops.operators (id, name, host, port, system_id, bind_type, window_size, enquire_link_interval_s,
                                status, version, credentials_version, created_by, updated_by)
     SELECT id, 'Bench carrier', 'bench-' || id || '.example.net', 2775, 'bench', 'transceiver', 10, 30,
            'ACTIVE', 1, 1, $2, $2
       FROM unnest($1::uuid[]) AS id`,
    [ids, ACTOR],
  );
}

/** The size of that data, from BENCH_PREFIXES, BENCH_OPERATORS, BENCH_RULES and BENCH_TABLES. */
export function routingDataSize(): { prefixes: number; operators: number; rules: number; tables: number } {
  return {
    prefixes: intEnv('BENCH_PREFIXES', 1_000_000),
    operators: intEnv('BENCH_OPERATORS', 1000),
    rules: intEnv('BENCH_RULES', 10_000),
    tables: intEnv('BENCH_TABLES', 1000),
  };
}

/**
 * The routing data the explain and snapshot benchmarks share: `operators` ACTIVE operators with
 * `rules` rules in all, each rule on one of `tables` prefix tables that hold `prefixes` entries
 * in all (254 and eight digits, so that every table has numbers of its own and some shared).
 */
export async function seedRoutingData(
  resources: Resources,
  size: { operators: number; rules: number; tables: number; prefixes: number },
): Promise<{ operatorIds: string[]; tableIds: string[] }> {
  const operatorIds = Array.from({ length: size.operators }, () => randomUUID());
  const tableIds = Array.from({ length: size.tables }, () => randomUUID());
  await insertActiveOperators(resources, operatorIds);
  await resources.db.query(
    `INSERT INTO ops.prefix_tables (id, name, created_by, updated_by)
     SELECT id, 'bench ' || id, $2, $2 FROM unnest($1::uuid[]) AS id`,
    [tableIds, ACTOR],
  );
  const perTable = Math.ceil(size.prefixes / size.tables);
  await resources.db.query(
    `INSERT INTO ops.prefix_table_entries (prefix_table_id, prefix, created_by, updated_by)
     SELECT t.id, '254' || lpad(((t.n - 1) * $2 + k)::text, 8, '0'), $3, $3
       FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n), generate_series(1, $2) AS k`,
    [tableIds, perTable, ACTOR],
  );
  await resources.db.query(
    `UPDATE ops.prefix_tables t SET entry_count = (SELECT count(*) FROM ops.prefix_table_entries e WHERE e.prefix_table_id = t.id)
      WHERE t.id = ANY($1::uuid[])`,
    [tableIds],
  );
  await resources.db.query(
    `INSERT INTO ops.routing_rules (id, operator_id, prefix_table_id, priority, weight, cost_per_segment, currency,
                                    created_by, updated_by)
     SELECT gen_random_uuid(), ($1::uuid[])[1 + (k % $3)], ($2::uuid[])[1 + (k % $4)], k % 5, 100,
            (1 + k % 20) / 1000.0, 'EUR', $5, $5
       FROM generate_series(0, $6 - 1) AS k`,
    [operatorIds, tableIds, size.operators, size.tables, ACTOR, size.rules],
  );
  await resources.db.query('ANALYZE ops.prefix_table_entries');
  await resources.db.query('ANALYZE ops.routing_rules');
  // As autovacuum would: with no statistics the planner takes 1,000 operators for a handful.
  await resources.db.query('ANALYZE ops.operators');
  await resources.db.query('ANALYZE ops.prefix_tables');
  return { operatorIds, tableIds };
}

export interface LoadRun {
  perSecond: number;
  p50: number;
  p99: number;
}

/** `n` GETs of `url(i)`, `concurrency` in flight; every answer must be 200. */
export async function loadGets(
  url: (i: number) => string,
  n: number,
  concurrency: number,
  headers: Record<string, string>,
): Promise<LoadRun> {
  const latencies: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const target = url(next++);
        const t = performance.now();
        const res = await fetch(target, { headers });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`${target} answered ${res.status}`);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return {
    perSecond: n / ((performance.now() - start) / 1000),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}
