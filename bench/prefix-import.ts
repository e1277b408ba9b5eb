/**
 * Prefix-table import on the real local stack (`npm run stack:up`): 1,000,000 prefixes sent as
 * CSV to `PUT /v1/admin/prefix-tables/{id}/entries` (Koa, JWT, streamed parse and validation,
 * COPY into a staging table, set operations, version, hash), beside a raw `COPY` of the same
 * rows into a scratch copy of the entries table (same columns, indexes and foreign key) in the same run, and
 * the service process's peak RSS growth from before its warm-up to the end of the import (the
 * service, admin API and outbox relay, runs in a process of its own: bench/serve.ts
 * `admin-and-relay`; the client here). Then the fan-out: one entries change for a
 * table that BENCH_FANOUT operators use, from the request to the last of their
 * `prefix_table_updated` events received by a NATS subscriber.
 *
 * Usage: `npm run bench:prefix-import`. BENCH_PREFIXES (default 1000000), BENCH_FANOUT (default
 * 1000). Goals: import ≥ 0.5 of raw COPY, RSS growth < 256 MB, fan-out on the stream within 1 s.
 * Everything lives in a throwaway database (dropped at the end, on failure and on SIGINT too).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomUUID } from 'node:crypto';
import { from as copyFrom } from 'pg-copy-streams';
import { connectNats } from '../src/clients/nats';
import type { EventEnvelope } from '../src/events/envelope';
import {
  ACTOR,
  insertActiveOperators,
  intEnv,
  openBenchDatabase,
  sampleRss,
  spawnServerProcess,
  type BenchService,
} from './bench-service';
import { runBench, type Cleanup } from './cleanup';

const MB = 1024 * 1024;

async function writeCsv(file: string, n: number): Promise<void> {
  async function* lines() {
    yield 'prefix\n';
    let chunk = '';
    // Carrier-like prefixes: country code, operator block, a spread of subscriber ranges.
    for (let i = 0; i < n; i++) {
      chunk += `254${String(700_000_000 + i * 7).padStart(9, '0')}\n`;
      if (chunk.length > 64 * 1024) {
        yield chunk;
        chunk = '';
      }
    }
    yield chunk;
  }
  await pipeline(Readable.from(lines()), createWriteStream(file));
}

async function createTable(s: BenchService, name: string): Promise<{ id: string; version: number }> {
  const res = await fetch(`${s.adminUrl}/prefix-tables`, {
    method: 'POST',
    headers: { ...s.auth, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  if (res.status !== 201) throw new Error(`create table answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as { id: string; version: number };
}

async function putEntries(s: BenchService, table: { id: string; version: number }, body: Readable | string) {
  const res = await fetch(`${s.adminUrl}/prefix-tables/${table.id}/entries`, {
    method: 'PUT',
    headers: { ...s.auth, 'content-type': 'text/csv', 'If-Match': `"${table.version}"` },
    body: typeof body === 'string' ? body : (Readable.toWeb(body) as ReadableStream),
    duplex: 'half',
  } as RequestInit);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`PUT entries answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as { added: number; table: { version: number; entryCount: number } };
}

/** The same rows, straight into a scratch copy of the entries table: the floor of any import. */
async function rawCopy(s: BenchService, file: string): Promise<number> {
  const client = await s.resources.db.connect();
  try {
    // The entries table exactly: columns, defaults, indexes and the foreign key to its table.
    await client.query(
      `CREATE TABLE bench_scratch (LIKE ops.prefix_table_entries INCLUDING ALL,
                                   FOREIGN KEY (prefix_table_id) REFERENCES ops.prefix_tables (id))`,
    );
    const tableId = (await createTable(s, `raw copy ${s.id}`)).id;
    const rows = new Transform({
      transform(chunk: Buffer, _enc, done) {
        const text = chunk.toString();
        done(null, text.replace(/^([0-9]+)$/gm, `${tableId}\t$1\t${ACTOR}\t${ACTOR}`));
      },
    });
    const start = performance.now();
    await pipeline(
      createReadStream(file, { start: 'prefix\n'.length, highWaterMark: 64 * 1024 }),
      lineAligned(),
      rows,
      client.query(copyFrom('COPY bench_scratch (prefix_table_id, prefix, created_by, updated_by) FROM STDIN')),
    );
    return performance.now() - start;
  } finally {
    await client.query('DROP TABLE IF EXISTS bench_scratch');
    client.release();
  }
}

/** Re-chunks a byte stream so that no chunk ends inside a line. */
function lineAligned(): Transform {
  let rest = '';
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      const text = rest + chunk.toString();
      const cut = text.lastIndexOf('\n') + 1;
      rest = text.slice(cut);
      done(null, text.slice(0, cut));
    },
    flush(done) {
      done(null, rest);
    },
  });
}

async function fanOut(
  s: BenchService,
  operators: number,
): Promise<{ requestMs: number; lastEventMs: number; events: number }> {
  const table = await createTable(s, `fan-out ${s.id}`);
  const ids = Array.from({ length: operators }, () => randomUUID());
  await insertActiveOperators(s.resources, ids);
  await s.resources.db.query(
    `INSERT INTO ops.routing_rules (id, operator_id, prefix_table_id, priority, weight, cost_per_segment, currency,
                                    created_by, updated_by)
     SELECT gen_random_uuid(), id, $2, 1, 100, 0.01, 'EUR', $3, $3 FROM unnest($1::uuid[]) AS id`,
    [ids, table.id, ACTOR],
  );
  const wanted = new Set<string>(ids);
  const sub = await connectNats(s.config.nats, 'operator-management-bench-fanout');
  let seen = 0;
  let last = 0;
  let done: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (done = resolve));
  sub.subscribe('operator.config.prefix_table_updated', {
    callback: (err, msg) => {
      if (err) return;
      if (!wanted.has(msg.json<EventEnvelope>().operatorId)) return;
      seen++;
      last = performance.now();
      if (seen === operators) done();
    },
  });
  await sub.flush();
  const start = performance.now();
  await putEntries(s, table, '2547\n2541\n');
  const requestMs = performance.now() - start;
  await Promise.race([all, new Promise((r) => setTimeout(r, 30_000))]);
  await sub.drain();
  return { requestMs, lastEventMs: last - start, events: seen };
}

async function main(cleanup: Cleanup): Promise<void> {
  const n = intEnv('BENCH_PREFIXES', 1_000_000);
  const operators = intEnv('BENCH_FANOUT', 1000);
  // The service (admin API and outbox relay) in a process of its own, its memory measured there.
  const db = await openBenchDatabase(cleanup, { relay: false });
  const server = await spawnServerProcess(cleanup, 'admin-and-relay', db.config.postgres.url);
  const s: BenchService = { ...db, adminUrl: `${server.url}/v1/admin` };
  const dir = await mkdtemp(path.join(tmpdir(), 'prefix-import-'));
  cleanup.add('remove the CSV', () => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'prefixes.csv');
  await writeCsv(file, n);

  // From before the warm-up: a warm-up taken into the baseline would hide its own peak.
  const rss = sampleRss(server.pid);
  // Warm-up: JIT, connections, the table's pages.
  await putEntries(
    s,
    await createTable(s, `warm-up ${s.id}`),
    createReadStream(file, { end: 200_000 }).pipe(lineAligned()),
  );

  const copyMs = await rawCopy(s, file);

  const table = await createTable(s, `import ${s.id}`);
  const start = performance.now();
  const written = await putEntries(s, table, createReadStream(file));
  const importMs = performance.now() - start;
  const rssPeak = rss.stop();
  const rssBefore = rss.before;
  if (written.added !== n || written.table.entryCount !== n) {
    throw new Error(`imported ${written.added} of ${n} prefixes (table holds ${written.table.entryCount})`);
  }

  const fan = await fanOut(s, operators);

  const rate = (ms: number) => Math.round(n / (ms / 1000));
  const ratio = copyMs / importMs;
  const growthMb = (rssPeak - rssBefore) / MB;
  console.log(`prefix import, ${n} prefixes as CSV (one request)`);
  console.log(`  raw COPY into a scratch entries table: ${Math.round(copyMs)} ms, ${rate(copyMs)} prefixes/s`);
  console.log(`  PUT /prefix-tables/{id}/entries:       ${Math.round(importMs)} ms, ${rate(importMs)} prefixes/s`);
  console.log(`  ratio ${ratio.toFixed(2)} of raw COPY (goal ≥ 0.5): ${ratio >= 0.5 ? 'met' : 'NOT met'}`);
  console.log(
    `  peak RSS growth ${growthMb.toFixed(0)} MB (${(rssBefore / MB).toFixed(0)} → ${(rssPeak / MB).toFixed(0)} MB; goal < 256 MB): ${growthMb < 256 ? 'met' : 'NOT met'}`,
  );
  console.log(`fan-out to ${operators} operators: request ${Math.round(fan.requestMs)} ms, ${fan.events} events,`);
  console.log(
    `  last event received ${Math.round(fan.lastEventMs)} ms after the request was sent (goal ≤ 1000 ms): ${
      fan.events === operators && fan.lastEventMs <= 1000 ? 'met' : 'NOT met'
    }`,
  );
}

runBench(main);
