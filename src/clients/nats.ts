import { connect, RetentionPolicy, StorageType, type NatsConnection } from 'nats';
import type { Config } from '../config';

export type { NatsConnection };

/** The subjects this service publishes; the stream covers all of them. */
export const STREAM_SUBJECTS = ['operator.config.>', 'operator.health'];

export async function connectNats(config: Config['nats'], name = 'operator-management'): Promise<NatsConnection> {
  return connect({ servers: config.servers, name, maxReconnectAttempts: -1, reconnectTimeWait: 1000 });
}

/** Creates the event stream when missing; keeps an existing one (its limits are ops' to tune). */
export async function ensureStream(nc: NatsConnection, stream: string): Promise<void> {
  const jsm = await nc.jetstreamManager();
  try {
    await jsm.streams.info(stream);
    return;
  } catch {
    // missing: create it below
  }
  try {
    await jsm.streams.add({
      name: stream,
      subjects: STREAM_SUBJECTS,
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: 7 * 24 * 60 * 60 * 1e9,
      duplicate_window: 10 * 60 * 1e9,
    });
  } catch (err) {
    // Another replica may have created it in the meantime.
    await jsm.streams.info(stream).catch(() => {
      throw err;
    });
  }
}
