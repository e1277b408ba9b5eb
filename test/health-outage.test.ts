import { spawn, type ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { once } from 'node:events';
import { createRedis, type Redis } from '../src/clients/redis';
import { OPERATOR_ID, workflowIds } from '../src/domain/workflow-ids';
import { loadConfig } from '../src/platform/config';
import { healthKey } from '../src/domain/health';
import { createLogger } from '../src/platform/logger';
import { openResources, type Resources } from '../src/platform/resources';
import { insertOperator, logCount, report, startIngestion, waitUntil, type Ingestion } from './support/health-fixtures';
import { freePort } from './support/ports';
import { TcpProxy } from './support/tcp-proxy';

/**
 * Redis goes away while reports keep coming, then returns: nothing is lost and the cache ends up
 * with the newest report. The Redis here is a private one on a spare port (the shared one is
 * never stopped).
 */

function startRedis(port: number): ChildProcess {
  return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
}

async function stopRedis(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null) return;
  server.kill('SIGKILL');
  await once(server, 'exit');
}

describe('health ingestion through a Redis outage', () => {
  const config = loadConfig();
  let resources: Resources;
  let port: number;
  let server: ChildProcess;
  let redis: Redis;
  let ingestion: Ingestion;

  beforeAll(async () => {
    resources = await openResources(config, createLogger('silent'));
    port = await freePort();
    server = startRedis(port);
    redis = createRedis({ ...config.redis, url: `redis://127.0.0.1:${port}` });
    redis.on('error', () => undefined);
    await waitUntil('the private Redis', async () => (await redis.ping()) === 'PONG');
    ingestion = await startIngestion({ config, ...resources, redis }, { retryDelayMs: 200 });
  });
  afterAll(async () => {
    await ingestion?.stop();
    redis?.disconnect();
    await stopRedis(server);
    await resources?.close();
  });

  it('loses no report while Redis is down, and the cache converges once it is back', async () => {
    const ids = await Promise.all([1, 2, 3].map(() => insertOperator(resources.db)));
    const t0 = Date.now() - 10_000;
    for (const id of ids) await ingestion.publish(id, report(id, { reportedAt: new Date(t0).toISOString() }));
    await waitUntil('the first reports cached', async () => {
      const values = await Promise.all(ids.map((id) => redis.get(healthKey(id))));
      return values.every((v) => v !== null);
    });

    await stopRedis(server);
    const newest = new Map<string, string>();
    for (const id of ids) {
      await ingestion.publish(id, report(id, { status: 'DOWN', reportedAt: new Date(t0 + 1000).toISOString() }));
      const last = report(id, { status: 'DEGRADED', inflight: 0, reportedAt: new Date(t0 + 2000).toISOString() });
      newest.set(id, last.reportedAt);
      await ingestion.publish(id, last);
    }
    // Batches fail and are redelivered for a while.
    await waitUntil(
      'failed batches',
      async () =>
        ((await ingestion.metrics.batchSeconds.get()).values.find(
          (v) => v.labels.outcome === 'failed' && v.metricName?.endsWith('_count'),
        )?.value ?? 0) >= 2,
      20_000,
    );
    // Down for a while longer: reports keep waiting in the stream.
    await new Promise((r) => setTimeout(r, 2000));
    const jsm = await resources.nats.jetstreamManager();
    const during = await jsm.consumers.info(ingestion.stream, ingestion.consumerName);
    expect(during.num_ack_pending + during.num_pending).toBeGreaterThan(0);

    server = startRedis(port);
    await waitUntil(
      'the cache to hold the newest reports',
      async () => {
        const values = await Promise.all(ids.map((id) => redis.get(healthKey(id))));
        return values.every(
          (v, i) => v !== null && (JSON.parse(v) as { reportedAt: string }).reportedAt === newest.get(ids[i]!),
        );
      },
      30_000,
    );
    for (const id of ids) {
      expect(await logCount(resources.db, id)).toBe(3);
      expect(JSON.parse((await redis.get(healthKey(id))) ?? '{}')).toMatchObject({ status: 'DEGRADED', inflight: 0 });
      const ttl = await redis.ttl(healthKey(id));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60);
    }
    await waitUntil('nothing left to deliver', async () => {
      const info = await jsm.consumers.info(ingestion.stream, ingestion.consumerName);
      return info.num_ack_pending === 0 && info.num_pending === 0;
    });
  });
});

/**
 * Temporal goes away while a draining operator's report, which its drain waits for, is in the
 * stream: the report waits for Temporal (redelivered, never dropped as failing on its own) and
 * its signal arrives once Temporal is back. Temporal is reached through a proxy the test cuts.
 */
describe('health ingestion through a Temporal outage', () => {
  const config = loadConfig();
  let resources: Resources;
  let proxy: TcpProxy;
  let temporal: Client;
  let ingestion: Ingestion;

  beforeAll(async () => {
    resources = await openResources(config, createLogger('silent'));
    const [host = '127.0.0.1', port = '7233'] = config.temporal.address.split(':');
    proxy = await TcpProxy.start({ host, port: Number(port) });
    // Without the client's own gRPC retries: a retry it had scheduled during the outage would
    // fire after the test closed the connection. The consumer's retries are what is tested.
    const connection = await Connection.connect({ address: `127.0.0.1:${proxy.port}`, interceptors: [] });
    temporal = new Client({ connection, namespace: config.temporal.namespace });
    // Two deliveries at most for a report failing on its own: a dropped report shows at once.
    ingestion = await startIngestion({ config, ...resources, temporal }, { retryDelayMs: 200, maxDeliveries: 2 });
  });
  afterAll(async () => {
    await ingestion?.stop();
    await temporal?.connection.close();
    await proxy?.stop();
    await resources?.close();
  });

  it("keeps a draining operator's report until Temporal takes its signal", async () => {
    const id = await insertOperator(resources.db, { status: 'DRAINING' });
    // The drain waits on a queue no worker polls: the server takes its signals all the same.
    const drain = await resources.temporal.workflow.start('drainOperator', {
      workflowId: workflowIds.drain(id),
      taskQueue: `health-outage-test-${id}`,
      args: [{}],
      typedSearchAttributes: [{ key: OPERATOR_ID, value: id }],
    });
    try {
      await proxy.cut();
      await ingestion.publish(id, report(id, { inflight: 0 }));
      await waitUntil(
        'failed batches',
        async () =>
          ((await ingestion.metrics.batchSeconds.get()).values.find(
            (v) => v.labels.outcome === 'failed' && v.metricName?.endsWith('_count'),
          )?.value ?? 0) >= 2,
        30_000,
      );
      // Two deliveries: a report taken for failing on its own would have been dropped by now.
      const dropped = (await ingestion.metrics.rejected.get()).values.find(
        (v) => v.labels.reason === 'failed_repeatedly',
      );
      expect(dropped?.value ?? 0).toBe(0);

      await proxy.restore();
      await waitUntil(
        'the signal in the drain',
        async () => ((await drain.fetchHistory()).events ?? []).some((e) => e.workflowExecutionSignaledEventAttributes),
        // The client's own reconnection backs off while Temporal is away (gRPC: up to minutes).
        120_000,
      );
    } finally {
      await drain.terminate('test over');
    }
  }, 180_000);
});
