/**
 * Credentials reads over mTLS against the real local stack (`npm run stack:up`), beside two
 * baselines measured in the same run: a direct KV v2 read from OpenBao (what the endpoint does
 * underneath) and a bare Node mTLS server answering a fixed body (what TLS and HTTP cost alone).
 * Usage: `npm run bench:credentials-read` (BENCH_CONCURRENCY, default 16; BENCH_SECONDS per
 * target, default 5).
 *
 * The servers run in a child process so that the load generator (this process) never shares an
 * event loop with them, as OpenBao does not either. Every client keeps its connections alive.
 * Nothing touches the service's own data: the operator row lives in a throwaway database
 * operator_mgmt_bench_<id>, the secret at a random operator id, the certificates in a temp
 * directory; all are removed at the end, on failure and on SIGINT/SIGTERM too.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { Registry } from 'prom-client';
import { createInternalApp, createInternalServer } from '../src/api/internal-app';
import { createPool } from '../src/clients/postgres';
import { createKvStore } from '../src/clients/vault';
import { loadConfig, type Config } from '../src/platform/config';
import { createLogger, logDestination } from '../src/platform/logger';
import { credentialsPath } from '../src/domain/credentials';
import { CredentialsService } from '../src/services/credentials';
import type { OperatorService } from '../src/services/operators';
import { TestPki } from '../test/support/certs';
import { createBenchDatabase } from './bench-database';
import { intEnv, percentile } from './bench-service';
import { runBench, type Cleanup } from './cleanup';

const CLIENT_ID = 'smpp-connector';
/** A target's turn at most this long: it then waits at most four turns, within the servers' 5 s keep-alive. */
const MAX_TURN_S = 0.8;

interface ServerSetup {
  config: Config;
  operatorId: string;
  /** Paths only: IPC carries JSON, not Buffers. */
  tls: { certPath: string; keyPath: string; caPath: string };
}

interface ServerPorts {
  service: number;
  bare: number;
}

/** Child process: the service's internal listener and the bare mTLS server. */
async function runServers(setup: ServerSetup): Promise<ServerPorts> {
  const { config } = setup;
  // Audit and request lines are part of the real cost: the service's own logger (redaction and
  // scrubbing included) at info, into /dev/null; its metrics too, as the service process keeps them.
  const log = createLogger('info', 'bench-credentials', logDestination('/dev/null'));
  const registry = new Registry();
  const db = createPool(config.postgres);
  const kv = await createKvStore(config.vault, log);
  const credentials = new CredentialsService({
    db,
    kv,
    log,
    cacheTtlMs: (config.vault.credentialsCacheTtlS ?? 0) * 1000,
  });
  credentials.start();
  // Only the config route uses OperatorService; the benchmark never calls it.
  const operators = {} as OperatorService;
  const app = createInternalApp({ config, log, operators, credentials, registry });
  const service = createInternalServer(app, config.internalTls, { log, reloadMs: 60_000 });

  const body = JSON.stringify({
    operatorId: setup.operatorId,
    systemId: 'benchsys01',
    password: 'x'.repeat(8),
    credentialsVersion: 1,
  });
  const bare = https.createServer(
    {
      cert: readFileSync(setup.tls.certPath),
      key: readFileSync(setup.tls.keyPath),
      ca: readFileSync(setup.tls.caPath),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    },
    (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.setHeader('cache-control', 'no-store');
      res.end(body);
    },
  );
  const listen = (server: http.Server) =>
    new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
    );
  return { service: await listen(service), bare: await listen(bare) };
}

interface Target {
  name: string;
  request: (agent: http.Agent) => Promise<void>;
  agent: () => http.Agent;
}

interface Result {
  name: string;
  requests: number;
  rps: number;
  p50: number;
  p99: number;
}

function get(mod: typeof http | typeof https, options: https.RequestOptions, check: (body: string) => void) {
  return new Promise<void>((resolve, reject) => {
    const req = mod.get(options, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        try {
          if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
          check(text);
          resolve();
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    req.on('error', reject);
  });
}

/** `concurrency` loops for `ms`, each one request at a time on the target's keep-alive agent. */
async function load(target: Target, agent: http.Agent, concurrency: number, ms: number, latencies?: number[]) {
  const until = performance.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        await target.request(agent);
        latencies?.push(performance.now() - t0);
      }
    }),
  );
}

/** An even number of rounds (each order as often as the other), each turn at most MAX_TURN_S. */
const roundsFor = (seconds: number) => 2 * Math.ceil(seconds / (2 * MAX_TURN_S));

/**
 * Every target for `seconds`, in rounds that take the targets in turn (the order reversed every
 * other round), so that a machine whose speed drifts during the run weighs on all alike.
 */
async function measure(targets: Target[], concurrency: number, seconds: number): Promise<Result[]> {
  const rounds = roundsFor(seconds);
  const agents = targets.map((t) => t.agent());
  // Warm-up: connections, JIT, PostgreSQL plan.
  for (const [i, target] of targets.entries()) await load(target, agents[i]!, concurrency, 1000);
  const latencies = targets.map((): number[] => []);
  const elapsed = targets.map(() => 0);
  for (let round = 0; round < rounds; round++) {
    const order = targets.map((_, i) => (round % 2 === 0 ? i : targets.length - 1 - i));
    for (const i of order) {
      const t0 = performance.now();
      await load(targets[i]!, agents[i]!, concurrency, (seconds * 1000) / rounds, latencies[i]);
      elapsed[i]! += performance.now() - t0;
    }
  }
  for (const agent of agents) agent.destroy();
  return targets.map((target, i) => {
    const samples = latencies[i]!;
    return {
      name: target.name,
      requests: samples.length,
      rps: (samples.length * 1000) / elapsed[i]!,
      p50: percentile(samples, 50),
      p99: percentile(samples, 99),
    };
  });
}

function report(results: Result[], base: Result, concurrency: number): void {
  const rows = results.map((r) => [
    r.name,
    String(r.requests),
    r.rps.toFixed(0),
    r.p50.toFixed(2),
    r.p99.toFixed(2),
    (r.rps / base.rps).toFixed(2),
    `${r.p99 - base.p99 >= 0 ? '+' : ''}${(r.p99 - base.p99).toFixed(2)}`,
  ]);
  const head = ['target', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'rate/OpenBao', 'p99 − OpenBao ms'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padStart(widths[i] ?? 0)).join(' | ')} |`;
  console.log(`concurrency ${concurrency}, keep-alive on every client\n`);
  console.log(line(head));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
  const service = results.find((r) => r.name.startsWith('service'));
  const bare = results.find((r) => r.name.startsWith('bare'));
  if (service && bare) {
    const ratio = service.rps / bare.rps;
    const extraP99 = service.p99 - bare.p99;
    console.log(`\nservice / bare mTLS: rate ${ratio.toFixed(2)}, p99 ${extraP99.toFixed(2)} ms more`);
    console.log(
      `goal (≥ 0.6 × bare mTLS rate, p99 ≤ bare + 1 ms): rate ${ratio >= 0.6 ? 'met' : 'NOT met'}, p99 ${extraP99 <= 1 ? 'met' : 'NOT met'}`,
    );
    const rateOk = service.rps >= base.rps / 2;
    const p99Ok = service.p99 - base.p99 <= 2;
    console.log(
      `goal (≥ 0.5 × OpenBao rate, p99 within 2 ms of OpenBao): rate ${rateOk ? 'met' : 'MISSED'}, p99 ${p99Ok ? 'met' : 'MISSED'}`,
    );
  }
}

async function main(cleanup: Cleanup): Promise<void> {
  const concurrency = intEnv('BENCH_CONCURRENCY', 16);
  const seconds = intEnv('BENCH_SECONDS', 5);
  const base = loadConfig();
  if (base.vault.auth.kind !== 'token') throw new Error('the benchmark reads OpenBao with VAULT_AUTH=token');
  const token = base.vault.auth.token;
  const id = randomBytes(4).toString('hex');
  const dbName = `operator_mgmt_bench_${id}`;

  const pki = new TestPki();
  cleanup.add('remove certificates', async () => pki.remove());
  const ca = pki.ca('bench-ca');
  const server = pki.issue(ca, 'server', { cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1', eku: 'serverAuth' });
  const client = pki.issue(ca, 'client', { cn: CLIENT_ID, san: `DNS:${CLIENT_ID}`, eku: 'clientAuth' });

  const benchUrl = await createBenchDatabase(base, cleanup, dbName);

  const operatorId = randomUUID();
  const secretPath = credentialsPath(operatorId);
  const kv = await createKvStore(base.vault);
  cleanup.add('close Vault client', async () => kv.close());
  await kv.write(secretPath, { system_id: 'benchsys01', password: randomBytes(4).toString('hex') }, 0);
  cleanup.add(`destroy ${secretPath}`, () => kv.destroy(secretPath));
  const db = new Client({ connectionString: benchUrl });
  await db.connect();
  await db.query(
    `INSERT INTO ops.operators (id, name, host, port, system_id, bind_type, window_size, enquire_link_interval_s,
                                status, version, credentials_version, created_by, updated_by)
     VALUES ($1, 'Bench', 'smsc.bench.example.net', 2775, 'benchsys01', 'transceiver', 10, 30, 'ACTIVE', 2, 1,
             'bench', 'bench')`,
    [operatorId],
  );
  await db.end();

  const config: Config = {
    ...base,
    postgres: { ...base.postgres, url: benchUrl },
    internalTls: {
      enabled: true,
      certPath: server.certPath,
      keyPath: server.keyPath,
      caPath: ca.certPath,
      allowedClients: [CLIENT_ID],
    },
  };
  // BENCH_PROFILE_DIR: the server process writes a V8 CPU profile there when it stops.
  const profile = process.env.BENCH_PROFILE_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`]
    : [];
  const child: ChildProcess = fork(__filename, {
    env: { ...process.env, BENCH_CHILD: '1' },
    execArgv: [...profile, ...process.execArgv],
  });
  const exited = once(child, 'exit');
  cleanup.add('stop server process', async () => {
    if (child.exitCode === null && child.kill('SIGTERM')) await exited;
  });
  const ports = await new Promise<ServerPorts>((resolve, reject) => {
    child.once('message', (m) => resolve(m as ServerPorts));
    child.once('exit', (code) => reject(new Error(`server process exited with ${code}`)));
    const tls = { certPath: server.certPath, keyPath: server.keyPath, caPath: ca.certPath };
    child.send({ config, operatorId, tls } satisfies ServerSetup);
  });

  const tlsAgent = () =>
    new https.Agent({ keepAlive: true, maxSockets: concurrency, ca: ca.cert, cert: client.cert, key: client.key });
  const vaultUrl = new URL(base.vault.addr);
  const targets: Target[] = [
    {
      name: 'OpenBao KV v2 read (raw HTTP)',
      agent: () => new http.Agent({ keepAlive: true, maxSockets: concurrency }),
      request: (agent) =>
        get(
          http,
          {
            agent,
            host: vaultUrl.hostname,
            port: vaultUrl.port,
            path: `/v1/${base.vault.mount}/data/${secretPath}?version=1`,
            headers: { 'x-vault-token': token },
          },
          (body) => {
            if ((JSON.parse(body) as { data: { metadata: { version: number } } }).data.metadata.version !== 1)
              throw new Error('OpenBao answered another version');
          },
        ),
    },
    {
      name: 'bare Node mTLS server',
      agent: tlsAgent,
      request: (agent) =>
        get(https, { agent, host: '127.0.0.1', port: ports.bare, servername: 'localhost', path: '/' }, () => undefined),
    },
    {
      name: 'service GET …/credentials (mTLS)',
      agent: tlsAgent,
      request: (agent) =>
        get(
          https,
          {
            agent,
            host: '127.0.0.1',
            port: ports.service,
            servername: 'localhost',
            path: `/v1/internal/operators/${operatorId}/credentials`,
          },
          (body) => {
            if ((JSON.parse(body) as { credentialsVersion: number }).credentialsVersion !== 1)
              throw new Error('the service answered another version');
          },
        ),
    },
  ];

  console.log(
    `database ${dbName}, secret ${secretPath}; ${seconds} s per target in ${roundsFor(seconds)} rounds taking them in turn, after 1 s of warm-up each…\n`,
  );
  const results = await measure(targets, concurrency, seconds);
  report(results, results[0] as Result, concurrency);
}

if (process.env.BENCH_CHILD === '1') {
  process.once('message', (setup) => {
    runServers(setup as ServerSetup).then(
      (ports) => process.send?.(ports),
      (err: unknown) => {
        console.error(`server process failed: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  });
  process.once('SIGTERM', () => process.exit(0));
} else {
  runBench(main);
}
