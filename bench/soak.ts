/**
 * The soak (`npm run soak`, not in CI): two replicas of each process (the service, all roles,
 * and the health-ingestion process) on one throwaway database and the local stack, for
 * SOAK_MINUTES (default 10), under a steady mix: admin writes (a PATCH), rule changes (a rule
 * added then deleted), credential reads over mTLS, and connector health reports at SOAK_REPORTS_S
 * (default 1,000) a second. A third of the way in, one replica of each is killed (SIGKILL) and
 * started again 5 s later; the load balancer of this script routes around the dead one, as a real
 * one would after its failed health check.
 *
 * The report: answers and errors by kind (inside and outside the kills), events lost or
 * duplicated (every committed change of ops.event_outbox checked against the stream, once each,
 * in version order per operator), p99s, and each process's memory growth.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { DeliverPolicy, JSONCodec } from 'nats';
import { loadConfig } from '../src/platform/config';
import { intEnv, openBenchDatabase, percentile, rssOf } from './bench-service';
import { runBench, type Cleanup } from './cleanup';

const ROOT = path.resolve(__dirname, '..');
const CERTS = path.join(ROOT, '.stack/certs');
const OPERATORS = 50;

interface Replica {
  name: string;
  entry: 'src/main.ts' | 'src/health-main.ts';
  env: Record<string, string>;
  child?: ChildProcess;
  up: boolean;
  /** RSS (kB) after the warm-up, or after its restart, and the latest sample. */
  rssStart?: number;
  rssNow?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rssOfChild = (child: ChildProcess | undefined) => (child?.pid ? rssOf(child.pid) : undefined);
const mb = (bytes: number | undefined) => (bytes ?? 0) / 2 ** 20;

async function main(cleanup: Cleanup): Promise<void> {
  const minutes = Number(process.env.SOAK_MINUTES ?? 10);
  const reportsPerSecond = intEnv('SOAK_REPORTS_S', 1000);
  const durationMs = minutes * 60_000;
  const db = await openBenchDatabase(cleanup);
  const base = loadConfig();
  const taskQueue = `soak-${db.id}`;
  const healthConsumer = `soak-health-${db.id}`;
  const shared = {
    DATABASE_URL: db.config.postgres.url,
    TEMPORAL_TASK_QUEUE: taskQueue,
    HEALTH_CONSUMER: healthConsumer,
    LOG_LEVEL: 'warn',
    INTERNAL_TLS: 'true',
    INTERNAL_TLS_CERT: path.join(CERTS, 'server.crt'),
    INTERNAL_TLS_KEY: path.join(CERTS, 'server.key'),
    INTERNAL_TLS_CA: path.join(CERTS, 'ca.crt'),
    INTERNAL_ALLOWED_CLIENTS: 'smpp-connector',
  };
  const replicas: Replica[] = [0, 1].flatMap((i) => [
    {
      name: `service-${i + 1}`,
      entry: 'src/main.ts' as const,
      env: { ...shared, ADMIN_PORT: String(18080 + i), INTERNAL_PORT: String(18443 + i), OPS_PORT: String(19090 + i) },
      up: false,
    },
    {
      name: `health-${i + 1}`,
      entry: 'src/health-main.ts' as const,
      env: { ...shared, HEALTH_OPS_PORT: String(19190 + i) },
      up: false,
    },
  ]);
  const output: Record<string, string> = {};

  async function start(r: Replica): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, r.entry)], {
      env: { ...process.env, ...r.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    r.child = child;
    const keep = (d: Buffer) => (output[r.name] = ((output[r.name] ?? '') + d.toString()).slice(-20_000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const ops = r.env.OPS_PORT ?? r.env.HEALTH_OPS_PORT;
    const deadline = Date.now() + 60_000;
    while ((await fetch(`http://127.0.0.1:${ops}/readyz`).catch(() => undefined))?.status !== 200) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`${r.name} did not start:\n${output[r.name]}`);
      await sleep(250);
    }
    r.up = true;
    r.rssStart = undefined;
  }
  async function kill(r: Replica): Promise<void> {
    r.up = false;
    if (r.child && r.child.exitCode === null) {
      const exited = once(r.child, 'exit');
      r.child.kill('SIGKILL');
      await exited;
    }
  }
  cleanup.add('stop the replicas', async () => {
    for (const r of replicas) {
      if (r.child && r.child.exitCode === null) {
        const exited = once(r.child, 'exit');
        r.child.kill('SIGTERM');
        await Promise.race([exited, sleep(15_000)]);
        if (r.child.exitCode === null) r.child.kill('SIGKILL');
      }
    }
  });
  await Promise.all(replicas.map(start));
  console.log(`soak: ${replicas.map((r) => r.name).join(', ')} up; ${minutes} min, ${reportsPerSecond} reports/s`);

  // Observed: answers by kind, latencies, events on the stream.
  const answers = new Map<string, number>();
  const count = (kind: string) => answers.set(kind, (answers.get(kind) ?? 0) + 1);
  const latency = { write: [] as number[], rule: [] as number[], credentials: [] as number[] };
  let killing = false;
  const services = replicas.filter((r) => r.entry === 'src/main.ts');
  let turn = 0;
  const pick = () => {
    const live = services.filter((r) => r.up);
    return live[turn++ % live.length] ?? services[0]!;
  };

  async function admin(method: string, p: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const r = pick();
    try {
      const res = await fetch(`http://127.0.0.1:${r.env.ADMIN_PORT}/v1/admin${p}`, {
        method,
        headers: { ...db.auth, 'content-type': 'application/json', 'If-Match': '*' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const json = res.status === 204 ? undefined : await res.json().catch(() => undefined);
      count(`${killing ? 'during kills' : 'steady'} ${method} ${res.status}`);
      return { status: res.status, json };
    } catch (err) {
      count(`${killing ? 'during kills' : 'steady'} ${method} ${(err as Error).message}`);
      return { status: 0, json: undefined };
    }
  }

  // Operators, onboarded through the API and bound by the reports below.
  const ids: string[] = [];
  for (let i = 0; i < OPERATORS; i++) {
    const res = await admin('POST', '/operators', {
      name: `Soak ${i}`,
      host: `soak-${db.id}-${i}.example.net`,
      port: 2775,
      systemId: `soak${i}`,
      password: `pw${i}`.padEnd(8, 'x').slice(0, 8),
      bindType: 'transceiver',
    });
    ids.push((res.json as { operator: { id: string } }).operator.id);
  }

  const nc = db.resources.nats;
  const js = nc.jetstream();
  const startedAt = new Date();
  const seen = new Map<string, number>(); // eventId → times received
  const versions = new Map<string, number[]>(); // operatorId → versions in arrival order
  const consumer = await js.consumers.get(base.nats.stream, {
    filterSubjects: 'operator.>',
    deliver_policy: DeliverPolicy.StartTime,
    opt_start_time: new Date(startedAt.getTime() - 60_000).toISOString(),
  });
  const idSet = new Set(ids);
  const messages = await consumer.consume();
  void (async () => {
    for await (const m of messages) {
      const e = m.json<{ eventId: string; operatorId: string; version: number; type: string }>();
      if (!idSet.has(e.operatorId) || e.type === 'operator.health') continue;
      seen.set(e.eventId, (seen.get(e.eventId) ?? 0) + 1);
      versions.set(e.operatorId, [...(versions.get(e.operatorId) ?? []), e.version]);
    }
  })();

  // Health reports: every operator UP at credentials version 1, spread over the second.
  const codec = JSONCodec();
  let reportsSent = 0;
  const reporter = setInterval(() => {
    const burst = Math.round(reportsPerSecond / 20);
    for (let k = 0; k < burst; k++) {
      const id = ids[(reportsSent + k) % ids.length]!;
      nc.publish(
        `connector.health.${id}`,
        codec.encode({
          operatorId: id,
          status: 'UP',
          boundSessions: 1,
          inflight: 0,
          credentialsVersion: 1,
          connectorInstance: 'soak-connector',
          reportedAt: new Date().toISOString(),
        }),
      );
    }
    reportsSent += burst;
  }, 50);
  cleanup.add('stop the reports', async () => clearInterval(reporter));

  const ca = readFileSync(path.join(CERTS, 'ca.crt'));
  const cert = readFileSync(path.join(CERTS, 'client.crt'));
  const key = readFileSync(path.join(CERTS, 'client.key'));
  const agent = new https.Agent({ keepAlive: true, ca, cert, key });
  const credentialRead = (id: string) =>
    new Promise<void>((resolve) => {
      const r = pick();
      const started = performance.now();
      const req = https.get(
        {
          host: '127.0.0.1',
          port: Number(r.env.INTERNAL_PORT),
          path: `/v1/internal/operators/${id}/credentials`,
          agent,
          servername: 'localhost',
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            latency.credentials.push(performance.now() - started);
            count(`${killing ? 'during kills' : 'steady'} credentials ${res.statusCode}`);
            resolve();
          });
        },
      );
      req.on('error', (err) => {
        count(`${killing ? 'during kills' : 'steady'} credentials ${err.message}`);
        resolve();
      });
    });

  // Warm-up: every operator ACTIVE before the measured mix.
  const warm = Date.now() + 90_000;
  for (;;) {
    const { rows } = await db.resources.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ops.operators WHERE id = ANY($1) AND status = 'ACTIVE'`,
      [ids],
    );
    if (rows[0]?.n === ids.length || Date.now() > warm) break;
    await sleep(1000);
  }
  await sleep(5000);
  for (const r of replicas) r.rssStart = rssOfChild(r.child);

  const end = Date.now() + durationMs;
  const killAt = Date.now() + durationMs / 3;
  let killed = false;
  let n = 0;
  // Three workers: writes, rule changes, credential reads; each paced to about 20/s.
  const loop = async (step: (i: number) => Promise<void>) => {
    while (Date.now() < end) {
      const t = performance.now();
      await step(n++);
      await sleep(Math.max(0, 50 - (performance.now() - t)));
    }
  };
  const killer = (async () => {
    await sleep(Math.max(0, killAt - Date.now()));
    killing = true;
    const victims = [replicas.find((r) => r.name === 'service-1')!, replicas.find((r) => r.name === 'health-1')!];
    console.log(`soak: killing ${victims.map((v) => v.name).join(' and ')} (SIGKILL)`);
    await Promise.all(victims.map(kill));
    await sleep(5000);
    await Promise.all(victims.map(start));
    await sleep(5000);
    killing = false;
    console.log('soak: both back');
    // Measured once warm, as the others were after the warm-up.
    await sleep(20_000);
    for (const v of victims) v.rssStart = rssOfChild(v.child);
    killed = true;
  })();
  const sampler = setInterval(() => {
    for (const r of replicas) if (r.up) r.rssNow = rssOfChild(r.child) ?? r.rssNow;
  }, 5000);
  cleanup.add('stop sampling', async () => clearInterval(sampler));
  await Promise.all([
    loop(async (i) => {
      const t = performance.now();
      await admin('PATCH', `/operators/${ids[i % ids.length]}`, { name: `Soak ${i}` });
      latency.write.push(performance.now() - t);
    }),
    loop(async (i) => {
      const id = ids[i % ids.length]!;
      const t = performance.now();
      const added = await admin('POST', `/operators/${id}/routing-rules`, {
        prefixes: [`2547${i % 1000}`],
        priority: 5,
        weight: 1,
        costPerSegment: '0.01',
        currency: 'EUR',
      });
      const set = added.json as { routingRules?: Array<{ id: string; prefixes?: string[] }> } | undefined;
      const rule = set?.routingRules?.find((r) => r.prefixes?.includes(`2547${i % 1000}`));
      if (rule) await admin('DELETE', `/operators/${id}/routing-rules/${rule.id}`);
      latency.rule.push(performance.now() - t);
    }),
    loop((i) => credentialRead(ids[i % ids.length]!)),
    killer,
  ]);
  clearInterval(reporter);
  clearInterval(sampler);
  for (const r of replicas) r.rssNow = rssOfChild(r.child) ?? r.rssNow;

  // Every committed change of these operators, once on the stream, in version order.
  let committed: Array<{ event_id: string; operator_id: string; version: number }>;
  const drained = Date.now() + 60_000;
  for (;;) {
    ({ rows: committed } = await db.resources.db.query(
      `SELECT event_id, operator_id, version FROM ops.event_outbox WHERE operator_id = ANY($1) ORDER BY id`,
      [ids],
    ));
    if (committed.every((c) => seen.has(c.event_id)) || Date.now() > drained) break;
    await sleep(1000);
  }
  messages.stop();
  const lost = committed.filter((c) => !seen.has(c.event_id)).length;
  const duplicated = [...seen.values()].filter((times) => times > 1).length;
  const outOfOrder = [...versions.values()].filter((v) => v.some((x, i) => i > 0 && x <= v[i - 1]!)).length;
  const fiveXX = [...answers]
    .filter(([k]) => k.startsWith('steady') && / 5\d\d$/.test(k))
    .reduce((a, [, v]) => a + v, 0);

  console.log(
    `\nsoak report: ${minutes} min, ${OPERATORS} operators, ${replicas.length} processes, kill and restart ${killed ? 'done' : 'NOT done'}`,
  );
  console.log(`  health reports published: ${reportsSent} (${(reportsSent / (durationMs / 1000)).toFixed(0)}/s)`);
  console.log('  answers by kind:');
  for (const [kind, times] of [...answers].sort()) console.log(`    ${kind.padEnd(40)} ${times}`);
  console.log(
    `  events: ${committed.length} committed, ${lost} lost, ${duplicated} duplicated, ${outOfOrder} operators out of version order`,
  );
  console.log(`  5xx outside the kills: ${fiveXX}`);
  console.log(
    `  p99: PATCH ${percentile(latency.write, 99).toFixed(1)} ms, rule add+delete ${percentile(latency.rule, 99).toFixed(1)} ms, credential read ${percentile(latency.credentials, 99).toFixed(1)} ms`,
  );
  console.log('  memory (RSS) per process, from after the warm-up (or 30 s after its restart) to the end:');
  for (const r of replicas) {
    console.log(
      `    ${r.name.padEnd(10)} ${mb(r.rssStart).toFixed(0)} MB → ${mb(r.rssNow).toFixed(0)} MB (${(mb(r.rssNow) - mb(r.rssStart)).toFixed(1)} MB)`,
    );
  }
  const ok = lost === 0 && duplicated === 0 && outOfOrder === 0 && fiveXX === 0 && killed;
  console.log(`  goals (0 lost, 0 duplicated, in order, 0 5xx outside the kills): ${ok ? 'met' : 'NOT met'}`);
}

runBench(main);
