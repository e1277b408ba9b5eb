/**
 * How a routing engine starts and stays current: `npx tsx examples/routing-engine-consumer.ts
 * [destination]` with the local stack and the service up (`npm start`). It loads the routing
 * snapshot over mTLS with the dev client certificate, follows the event stream from the
 * snapshot's sequence, and every few seconds prints what the destination would match — the
 * same order as `GET /v1/admin/routing/explain`.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';
import { connect } from 'nats';
import { followConfigEvents, ndjsonRecords, RoutingState } from '../src/consumer/routing-state';
import type { SnapshotRecord } from '../src/domain/routing-snapshot';

const INTERNAL = process.env.INTERNAL_URL ?? 'https://127.0.0.1:8443/v1/internal';
const certs = path.resolve(__dirname, '../.stack/certs');
const tls = {
  ca: readFileSync(path.join(certs, 'ca.crt')),
  cert: readFileSync(path.join(certs, 'client.crt')),
  key: readFileSync(path.join(certs, 'client.key')),
};

function get(
  urlPath: string,
  headers: Record<string, string> = { accept: 'application/json' },
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    https.get(`${INTERNAL}${urlPath}`, { ...tls, headers }, resolve).on('error', reject);
  });
}

async function json<T>(res: IncomingMessage): Promise<T> {
  let text = '';
  for await (const chunk of res) text += String(chunk);
  return JSON.parse(text) as T;
}

async function main(): Promise<void> {
  const destination = process.argv[2] ?? '254712345678';
  const state = new RoutingState(async (id, held) => {
    const headers: Record<string, string> = { accept: 'application/json' };
    // The version held: 304 ('unchanged') when it is still the current one.
    if (held) headers['if-none-match'] = `"${held.version}"`;
    const res = await get(`/prefix-tables/${id}/entries`, headers);
    if (res.statusCode !== 200) {
      res.resume();
      if (res.statusCode === 304) return 'unchanged';
      if (res.statusCode === 404) return undefined;
      throw new Error(`entries of table ${id} answered ${res.statusCode}`); // the helper retries the event
    }
    return json<{ version: number; contentHash: string; prefixes: string[] }>(res);
  });
  state.explain(destination, new Date()); // a number explain refuses stops here (RangeError), not every 5 s
  const from = await state.loadSnapshot(
    ndjsonRecords<SnapshotRecord>(await get('/routing/snapshot', { accept: 'application/x-ndjson' })),
  );
  console.log(
    `snapshot: ${state.operators.size} operators, ${state.tables.size} tables; following from sequence ${from}`,
  );

  const nc = await connect({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' });
  const follower = await followConfigEvents(nc, process.env.NATS_STREAM ?? 'OPERATOR_EVENTS', from, state);
  const timer = setInterval(() => {
    const { ranks, excluded } = state.explain(destination, new Date());
    console.log(`\n${destination}:`);
    for (const rank of ranks) {
      const groups = rank.groups.map((g) =>
        g.members
          .map((m) => `${m.candidate.operatorId} (${(m.share * 100).toFixed(0)}% at ${g.costPerSegment} ${g.currency})`)
          .join(', '),
      );
      console.log(
        `  ${rank.rank}. prefix ${rank.prefixLength} digits, priority ${rank.priority}: ${groups.join(' | ')}`,
      );
    }
    for (const { rule, reason } of excluded) console.log(`  out: rule ${rule.ruleId} (${reason})`);
  }, 5000);
  process.once('SIGINT', () => {
    clearInterval(timer);
    void follower.stop().then(() => nc.drain());
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
