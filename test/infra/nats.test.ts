import { randomUUID } from 'node:crypto';
import { AckPolicy, DeliverPolicy, JSONCodec } from 'nats';
import { loadConfig } from '../../src/platform/config';
import {
  connectNats,
  ensureStream,
  streamWarnings,
  STREAM_SUBJECTS,
  type NatsConnection,
} from '../../src/clients/nats';

const codec = JSONCodec<{ marker: string }>();

describe('NATS JetStream (real server)', () => {
  const config = loadConfig().nats;
  const stream = config.stream; // OPERATOR_EVENTS: a test stream would overlap its subjects
  const durable = `infra_test_${randomUUID().replace(/-/g, '')}`;
  let nc: NatsConnection;

  beforeAll(async () => {
    nc = await connectNats(config, 'operator-management-infra-test');
  });

  afterAll(async () => {
    const jsm = await nc.jetstreamManager();
    await jsm.consumers.delete(stream, durable).catch(() => undefined);
    await nc.drain();
  });

  it('ensures the event stream idempotently, deduplicates by msgID and delivers to a pull consumer', async () => {
    await ensureStream(nc, stream);
    expect(await ensureStream(nc, stream)).toEqual([]);
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(stream);
    expect(info.config.subjects).toEqual(expect.arrayContaining(STREAM_SUBJECTS));

    const js = nc.jetstream();
    const marker = randomUUID();
    const msgID = randomUUID();
    const ack = await js.publish('operator.health', codec.encode({ marker }), { msgID });
    expect(ack.stream).toBe(stream);
    expect(ack.duplicate).toBe(false);

    const again = await js.publish('operator.health', codec.encode({ marker }), { msgID });
    expect(again.duplicate).toBe(true);
    expect(again.seq).toBe(ack.seq);

    await jsm.consumers.add(stream, {
      durable_name: durable,
      filter_subject: 'operator.health',
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: ack.seq,
      ack_policy: AckPolicy.Explicit,
    });
    const consumer = await js.consumers.get(stream, durable);
    const msg = await consumer.next({ expires: 5_000 });
    expect(msg).not.toBeNull();
    expect(msg!.subject).toBe('operator.health');
    expect(msg!.seq).toBe(ack.seq);
    expect(msg!.headers?.get('Nats-Msg-Id')).toBe(msgID);
    expect(codec.decode(msg!.data)).toEqual({ marker });
    expect(await msg!.ackAck()).toBe(true);

    const ci = await jsm.consumers.info(stream, durable);
    expect(ci.num_ack_pending).toBe(0);
    expect(ci.ack_floor.stream_seq).toBeGreaterThanOrEqual(ack.seq);

    expect(await jsm.consumers.delete(stream, durable)).toBe(true);
    await expect(jsm.consumers.info(stream, durable)).rejects.toThrow(/consumer not found/i);
  });

  it('warns about an existing stream that would break the delivery promise', () => {
    expect(streamWarnings(STREAM_SUBJECTS, 10 * 60 * 1e9)).toEqual([]);
    expect(streamWarnings(['>'], 10 * 60 * 1e9)).toEqual([]);
    const warnings = streamWarnings(['operator.config.>'], 30 * 1e9);
    expect(warnings).toEqual([
      expect.stringContaining('does not capture operator.health'),
      expect.stringContaining('duplicate window is under 2 minutes'),
    ]);
  });
});
