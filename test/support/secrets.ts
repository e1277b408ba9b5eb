import type { Client } from '@temporalio/client';
import type { Redis } from 'ioredis';
import { DeliverPolicy, type NatsConnection } from 'nats';
import type { Db } from '../../src/clients/postgres';
import { workflowIds } from '../../src/domain/workflow-ids';
import { textOf } from './rotation';

/**
 * Fails when a secret appears in a text, without printing either: jest's own `not.toContain`
 * message would show the secret it was asked to keep out of sight (test output included).
 */
export function expectNoSecret(text: string, secret: string, where = 'the checked text'): void {
  if (!secret) throw new Error('expectNoSecret needs a non-empty secret');
  if (text.includes(secret)) throw new Error(`a secret (${secret.length} characters) appeared in ${where}`);
}

/** Every key and value in Redis, one entry each (the instance is shared: all of it, whoever wrote it). */
export async function redisEntries(redis: Redis): Promise<Array<{ key: string; value: string }>> {
  const entries: Array<{ key: string; value: string }> = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 500);
    cursor = next;
    for (const key of keys) entries.push({ key, value: await valueOf(redis, key) });
  } while (cursor !== '0');
  return entries;
}

async function valueOf(redis: Redis, key: string): Promise<string> {
  switch (await redis.type(key)) {
    case 'string':
      return (await redis.get(key)) ?? '';
    case 'hash':
      return JSON.stringify(await redis.hgetall(key));
    case 'list':
      return JSON.stringify(await redis.lrange(key, 0, -1));
    case 'set':
      return JSON.stringify(await redis.smembers(key));
    case 'zset':
      return JSON.stringify(await redis.zrange(key, 0, -1));
    case 'stream':
      return JSON.stringify(await redis.xrange(key, '-', '+'));
    default:
      return '';
  }
}

/** Every row of every table in schema ops, as JSON text. */
export async function dumpOpsSchema(db: Db): Promise<string> {
  const { rows: tables } = await db.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'ops' AND table_type = 'BASE TABLE'`,
  );
  const parts: string[] = [];
  for (const { table_name } of tables) {
    const { rows } = await db.query(`SELECT row_to_json(t)::text AS r FROM ops."${table_name}" t`);
    // One by one: a table of a million entries is too many arguments for one push.
    for (const row of rows as Array<{ r: string }>) parts.push(row.r);
  }
  return parts.join('\n');
}

/** The decoded history of every workflow run of these operators. */
export async function historiesOf(temporal: Client, operatorIds: string[]): Promise<string> {
  const parts: string[] = [];
  for (const id of operatorIds) {
    // The latest runs by id, whatever the (eventually consistent) visibility list says yet.
    for (const workflowId of [workflowIds.onboarding(id), workflowIds.rotation(id), workflowIds.drain(id)]) {
      const history = await temporal.workflow
        .getHandle(workflowId)
        .fetchHistory()
        .catch(() => undefined);
      if (history) parts.push(...textOf(history));
    }
    for await (const wf of temporal.workflow.list({ query: `OperatorId = '${id}'` })) {
      const history = await temporal.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
      parts.push(...textOf(history));
    }
  }
  return parts.join('\n');
}

/** Every value in Redis (the instance is shared: all of it, whoever wrote it), as text. */
export async function dumpRedis(redis: Redis): Promise<string> {
  return (await redisEntries(redis)).map(({ key, value }) => `${key}\n${value}`).join('\n');
}

/** Every message stored since `since` in every JetStream stream of the server, as text. */
export async function dumpStreams(nc: NatsConnection, since: Date): Promise<string> {
  const jsm = await nc.jetstreamManager();
  const parts: string[] = [];
  for await (const info of jsm.streams.list()) parts.push(await dumpStream(nc, info.config.name, since));
  return parts.join('\n');
}

/** Every message of a JetStream stream stored since `since`: subject, headers and data, as text. */
async function dumpStream(nc: NatsConnection, stream: string, since: Date): Promise<string> {
  const js = nc.jetstream();
  const consumer = await js.consumers.get(stream, {
    deliver_policy: DeliverPolicy.StartTime,
    opt_start_time: since.toISOString(),
  });
  const parts: string[] = [];
  for (;;) {
    const m = await consumer.next({ expires: 1000 });
    if (!m) break;
    const headers = m.headers ? [...m.headers].map(([k, v]) => `${k}: ${v.join(',')}`).join('\n') : '';
    parts.push(`${m.subject}\n${headers}\n${m.string()}`);
    if (m.info.pending === 0) break;
  }
  return parts.join('\n');
}
