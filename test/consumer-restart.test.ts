import { randomUUID } from 'node:crypto';
import type { NatsConnection } from 'nats';
import { connectNats, ensureStream } from '../src/clients/nats';
import { consumeConfigEvents, InMemoryAppliedVersions } from '../src/consumer/config-events';
import { followConfigEvents, RoutingState } from '../src/consumer/routing-state';
import type { EventEnvelope } from '../src/events/envelope';
import { loadConfig } from '../src/platform/config';
import { PrivateNats } from './support/private-nats';

/**
 * The peers' helpers across a NATS restart: the durable consumer (consumeConfigEvents) and the
 * routing engine's ordered follower (followConfigEvents) both go on with the events published
 * after the server is back, none lost. The server is a private one, restarted with its store.
 */

jest.setTimeout(60_000);
const config = loadConfig();

/** A state that records what it is given instead of building routing tables. */
class Recorder extends RoutingState {
  readonly seen: number[] = [];
  constructor() {
    super(async () => undefined);
  }
  override async apply(event: EventEnvelope): Promise<boolean> {
    this.seen.push(event.version);
    return true;
  }
}

const until = async (what: string, done: () => boolean, ms = 20_000) => {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${what} never happened`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('consumer helpers across a NATS restart', () => {
  let nats: PrivateNats;
  let nc: NatsConnection;
  const operatorId = randomUUID();

  beforeAll(async () => {
    nats = await PrivateNats.start();
    nc = await connectNats({ ...config.nats, servers: [nats.url] }, 'consumer-restart-test');
    await ensureStream(nc, config.nats.stream);
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.dispose();
  });

  const publish = async (version: number) => {
    const event: EventEnvelope = {
      eventId: randomUUID(),
      type: 'operator.config.updated',
      operatorId,
      version,
      occurredAt: new Date().toISOString(),
      actor: 'test',
      data: {},
    } as EventEnvelope;
    await nc.jetstream().publish(event.type, JSON.stringify(event), { msgID: event.eventId });
  };

  it('goes on after the server restarts, nothing lost, in order', async () => {
    const durableSeen: number[] = [];
    const durable = await consumeConfigEvents(nc, {
      stream: config.nats.stream,
      durable: `restart-${operatorId}`,
      versions: new InMemoryAppliedVersions(),
      apply: async (event) => {
        if (event.operatorId === operatorId) durableSeen.push(event.version);
      },
    });
    const recorder = new Recorder();
    const follower = await followConfigEvents(nc, config.nats.stream, 1, recorder);
    try {
      await publish(1);
      await until('version 1 reached both', () => durableSeen.length === 1 && recorder.seen.length === 1);

      let reconnected = false;
      void (async () => {
        for await (const s of nc.status()) if (s.type === 'reconnect') reconnected = true;
      })();
      await nats.stop();
      await nats.restart();
      // Published once the client is back: the helpers must still be following.
      await until('the client reconnected', () => reconnected);
      for (let attempt = 0; ; attempt++) {
        try {
          await publish(2);
          break;
        } catch (err) {
          if (attempt > 40) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      await publish(3);
      await until('versions 2 and 3 reached both', () => durableSeen.length === 3 && recorder.seen.length === 3);
      expect(durableSeen).toEqual([1, 2, 3]);
      expect(recorder.seen).toEqual([1, 2, 3]);
    } finally {
      await durable.stop();
      await follower.stop();
    }
  });
});
