import { connect, RetentionPolicy, StorageType, type NatsConnection } from 'nats';
import type { Config } from '../platform/config';

export type { NatsConnection };

/** The subjects this service publishes; the stream covers all of them. */
export const STREAM_SUBJECTS = ['operator.config.>', 'operator.health'];

/**
 * noAsyncTraces: nats.js otherwise captures two stack traces for every request, a JetStream
 * publish included (a third of the relay's CPU while it flushes a backlog). What is lost: the
 * caller's frames in the stack of a request's timeout error, which is logged by its message.
 */
export async function connectNats(config: Config['nats'], name = 'operator-management'): Promise<NatsConnection> {
  return connect({
    servers: config.servers,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    noAsyncTraces: true,
  });
}

/**
 * The event stream's settings (README "Event delivery"): file storage survives a NATS restart;
 * limits retention with a 7-day max age lets a peer that was down for days replay what it
 * missed; the 10-minute duplicate window drops a relay's re-publish after a crash or timeout.
 */
export const STREAM_SETTINGS = {
  retention: RetentionPolicy.Limits,
  storage: StorageType.File,
  max_age: 7 * 24 * 60 * 60 * 1e9,
  duplicate_window: 10 * 60 * 1e9,
} as const;

/** Below this, a re-publish after a slow crash recovery could slip past deduplication. */
const MIN_DUPLICATE_WINDOW_NS = 2 * 60 * 1e9;

/**
 * Creates the event stream when missing. An existing one is kept as it is (its limits are ops'
 * to tune), but what would break this service's promises is returned as warnings to log.
 */
export async function ensureStream(nc: NatsConnection, stream: string): Promise<string[]> {
  const jsm = await nc.jetstreamManager();
  const existing = await jsm.streams.info(stream).catch(() => undefined);
  if (existing) return streamWarnings(existing.config.subjects ?? [], existing.config.duplicate_window);
  try {
    await jsm.streams.add({ name: stream, subjects: STREAM_SUBJECTS, ...STREAM_SETTINGS });
  } catch (err) {
    // Another replica may have created it in the meantime.
    await jsm.streams.info(stream).catch(() => {
      throw err;
    });
  }
  return [];
}

export function streamWarnings(subjects: readonly string[], duplicateWindowNs: number | undefined): string[] {
  const warnings: string[] = [];
  const missing = STREAM_SUBJECTS.filter((s) => !subjects.includes(s) && !subjects.includes('>'));
  if (missing.length > 0)
    warnings.push(`the stream does not capture ${missing.join(', ')}: those events cannot be published`);
  if ((duplicateWindowNs ?? 0) < MIN_DUPLICATE_WINDOW_NS) {
    warnings.push("the stream's duplicate window is under 2 minutes: a re-published event may arrive twice");
  }
  return warnings;
}
