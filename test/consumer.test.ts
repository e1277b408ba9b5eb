import { randomUUID } from 'node:crypto';
import { connectNats, type NatsConnection } from '../src/clients/nats';
import { loadConfig } from '../src/platform/config';
import {
  consumeConfigEvents,
  handleConfigEvent,
  InMemoryAppliedVersions,
  type Outcome,
} from '../src/consumer/config-events';
import type { EventEnvelope } from '../src/events/envelope';

/** The peers' consumer helper: stale and duplicate events are dropped, order survives a retry. */

const event = (operatorId: string, version: number, eventId = randomUUID()): EventEnvelope => ({
  eventId,
  type: 'operator.config.prefix_table_updated',
  operatorId,
  version,
  occurredAt: new Date().toISOString(),
  actor: 'test-consumer',
  data: {},
});

describe('handleConfigEvent', () => {
  it('applies newer versions once, drops stale and duplicate ones, and reports gaps', async () => {
    const versions = new InMemoryAppliedVersions();
    const applied: number[] = [];
    const apply = async (e: EventEnvelope) => {
      applied.push(e.version);
    };
    const id = randomUUID();
    const v2 = event(id, 2);
    const outcomes: Outcome[] = [];
    for (const e of [event(id, 1), v2, v2, event(id, 1), event(id, 4)]) {
      outcomes.push(await handleConfigEvent(e, versions, apply));
    }
    expect(applied).toEqual([1, 2, 4]);
    // A consumer that starts late sees a gap before its first event too.
    expect(await handleConfigEvent(event(randomUUID(), 3), versions, apply)).toEqual({ applied: true, gap: true });
    expect(outcomes).toEqual([
      { applied: true, gap: false },
      { applied: true, gap: false },
      { applied: false, reason: 'stale' },
      { applied: false, reason: 'stale' },
      { applied: true, gap: true },
    ]);
  });

  it('does not record a version whose apply failed', async () => {
    const versions = new InMemoryAppliedVersions();
    const id = randomUUID();
    await expect(
      handleConfigEvent(event(id, 1), versions, async () => {
        throw new Error('store down');
      }),
    ).rejects.toThrow('store down');
    expect(await versions.get(id)).toBeUndefined();
  });
});

describe('consumeConfigEvents (real JetStream)', () => {
  const config = loadConfig().nats;
  const durable = `consumer_test_${randomUUID().replace(/-/g, '')}`;
  let nc: NatsConnection;

  beforeAll(async () => {
    nc = await connectNats(config, 'consumer-test');
  });
  afterAll(async () => {
    const jsm = await nc.jetstreamManager();
    await jsm.consumers.delete(config.stream, durable).catch(() => undefined);
    await nc.drain();
  });

  it('applies each version once and in order, through a duplicate, a stale replay and a failed apply', async () => {
    const id = randomUUID();
    const js = nc.jetstream();
    const startTime = new Date();
    const v2 = event(id, 2);
    // As the stream can hold them: a replayed v2 (another message id) and a late v1.
    for (const e of [event(id, 1), v2, { ...v2 }, event(id, 1), event(id, 3)]) {
      await js.publish(e.type, JSON.stringify(e), { msgID: randomUUID() });
    }

    const applied: number[] = [];
    let failOnce = true;
    const done = new Promise<void>((resolve) => {
      void consumeConfigEvents(nc, {
        stream: config.stream,
        durable,
        startTime,
        retryDelayMs: 50,
        versions: new InMemoryAppliedVersions(),
        async apply(e) {
          if (e.operatorId !== id) return;
          if (e.version === 2 && failOnce) {
            failOnce = false;
            throw new Error('store briefly down');
          }
          applied.push(e.version);
          if (e.version === 3) resolve();
        },
      }).then((running) => done.finally(() => running.stop()));
    });
    await done;
    expect(failOnce).toBe(false);
    expect(applied).toEqual([1, 2, 3]);
  });
});
