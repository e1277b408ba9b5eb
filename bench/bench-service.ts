import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import type Koa from 'koa';
import { loadConfig, type Config } from '../src/platform/config';
import { createLogger } from '../src/platform/logger';
import { openResources, type Resources } from '../src/platform/resources';
import { createBenchDatabase } from './bench-database';
import type { Cleanup } from './cleanup';

/** What every admin-API benchmark starts from: a throwaway database, and its service run apart (spawnServer). */

export const ACTOR = 'system:bench';

export interface BenchDatabase {
  id: string;
  config: Config;
  resources: Resources;
  /** Headers of an admin request: the bearer token. */
  auth: Record<string, string>;
}

/** A bench database with the admin API serving it (in a process of its own). */
export interface BenchService extends BenchDatabase {
  adminUrl: string;
}

/**
 * A throwaway database, the service's clients on it and an admin token; the outbox relay runs
 * here unless `relay: false` (the service under load then runs its own, in its process).
 */
export async function openBenchDatabase(
  cleanup: Cleanup,
  { relay = true }: { relay?: boolean } = {},
): Promise<BenchDatabase> {
  const id = randomBytes(4).toString('hex');
  const base = loadConfig();
  const secret = base.jwt.secret;
  if (!secret) throw new Error('the bench signs its admin token with JWT_SECRET: set it (or unset JWT_JWKS_URI)');
  const benchUrl = await createBenchDatabase(base, cleanup, `operator_mgmt_bench_${id}`);
  const config: Config = { ...base, postgres: { ...base.postgres, url: benchUrl } };
  // Seeding a million rows is one long statement: no statement timeout for the bench's own pool.
  const resources = await openResources(
    { ...config, postgres: { ...config.postgres, statementTimeoutMs: 0 } },
    createLogger('warn', 'bench'),
  );
  cleanup.add('close the service clients', () => resources.close());
  if (relay) resources.relay.start(config.nats.outboxPollMs);
  const token = jwt.sign({ sub: ACTOR, scope: 'admin' }, secret, { expiresIn: '1h' });
  return { id, config, resources, auth: { authorization: `Bearer ${token}` } };
}

/**
 * `bench/serve.ts <kind>` in a child process on the bench database (the load generator stays
 * here): its URL once it listens. The cleanup stops it.
 */
export async function spawnServer(
  cleanup: Cleanup,
  kind: string,
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<string> {
  return (await spawnServerProcess(cleanup, kind, databaseUrl, env)).url;
}

/** That server's URL and its process id (to sample its memory with sampleRss). */
export async function spawnServerProcess(
  cleanup: Cleanup,
  kind: string,
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<{ url: string; pid: number }> {
  // BENCH_PROFILE_DIR: each server writes a V8 CPU profile there when it stops (open it in Chrome DevTools).
  const profile = process.env.BENCH_PROFILE_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`]
    : [];
  const child = spawn(process.execPath, [...profile, ...process.execArgv, path.join(__dirname, 'serve.ts'), kind], {
    env: { ...process.env, ...env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  cleanup.add(`stop the ${kind} server`, async () => {
    if (child.exitCode === null && child.kill('SIGTERM')) await exited;
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      if (line.startsWith('listening ')) resolve(line.slice('listening '.length));
    });
    child.once('exit', (code) => reject(new Error(`the ${kind} server exited before it listened (code ${code})`)));
  });
  lines.on('line', (line) => console.log(`[${kind}] ${line}`));
  if (child.pid === undefined) throw new Error(`the ${kind} server has no process id`);
  return { url, pid: child.pid };
}

/** A process's resident set size in bytes now (Linux: VmRSS); undefined once it has gone. */
export function rssOf(pid: number): number | undefined {
  try {
    const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

/**
 * A process's peak resident set size from now on (Linux: VmRSS of /proc/<pid>/status, every 20
 * ms): `before` now, `stop()` the peak seen. A process that has gone is not sampled: its own exit
 * fails the measurement it was serving.
 */
export function sampleRss(pid: number): { before: number; stop(): number } {
  const now = () => rssOf(pid);
  const before = now();
  if (before === undefined) throw new Error(`no VmRSS for process ${pid}`);
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, now() ?? peak)), 20);
  return {
    before,
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

export function listen(app: Pick<Koa, 'listen'>): Promise<Server> {
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
  // As autovacuum would, but now rather than in the middle of a measurement: statistics (with
  // none the planner takes 1,000 operators for a handful) and the visibility map.
  for (const table of ['prefix_table_entries', 'routing_rules', 'operators', 'prefix_tables']) {
    await resources.db.query(`VACUUM (ANALYZE) ops.${table}`);
  }
  return { operatorIds, tableIds };
}

export interface LoadRun {
  perSecond: number;
  p50: number;
  p99: number;
}

/** One request on a kept-alive connection of `agent`: its status and body once read whole. */
export function send(
  agent: http.Agent,
  url: string,
  options: { method?: string; headers: Record<string, string>; body?: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent, method: options.method ?? 'GET', headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      // A kept-alive connection the server closed as idle just as this request went out on it:
      // the server never read the request, so it is sent again on another connection (the
      // retry Node's documentation gives for `request.reusedSocket`).
      if (req.reusedSocket && err.code === 'ECONNRESET') send(agent, url, options).then(resolve, reject);
      else reject(err);
    });
    req.end(options.body);
  });
}

interface RawRun {
  latencies: number[];
  ms: number;
}

/** GETs `from` … `from + n - 1` of `url(i)`, `concurrency` in flight; every answer must be 200. */
async function run(
  url: (i: number) => string,
  from: number,
  n: number,
  concurrency: number,
  headers: Record<string, string>,
): Promise<RawRun> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  let next = from;
  const start = performance.now();
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < from + n) {
          const target = url(next++);
          const t = performance.now();
          const { status } = await send(agent, target, { headers });
          if (status !== 200) throw new Error(`${target} answered ${status}`);
          latencies.push(performance.now() - t);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return { latencies, ms: performance.now() - start };
}

function summary(runs: RawRun[]): LoadRun {
  const latencies = runs.flatMap((r) => r.latencies);
  const ms = runs.reduce((sum, r) => sum + r.ms, 0);
  return { perSecond: latencies.length / (ms / 1000), p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

export interface LoadSide {
  url: (i: number) => string;
  headers: Record<string, string>;
}

/**
 * `n` GETs of each side in `rounds` alternating rounds (a, b, a, b, …), each side's figures over
 * all its rounds: on a shared machine whose speed drifts, both sides see the same drift, and
 * their ratio stays what it is.
 */
export async function compareLoads(
  a: LoadSide,
  b: LoadSide,
  n: number,
  concurrency: number,
  rounds = 6,
): Promise<[LoadRun, LoadRun]> {
  const per = Math.ceil(n / rounds);
  const runsA: RawRun[] = [];
  const runsB: RawRun[] = [];
  for (let r = 0; r < rounds; r++) {
    runsA.push(await run(a.url, r * per, per, concurrency, a.headers));
    runsB.push(await run(b.url, r * per, per, concurrency, b.headers));
  }
  return [summary(runsA), summary(runsB)];
}
