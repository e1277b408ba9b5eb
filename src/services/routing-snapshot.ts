import type { NatsConnection } from 'nats';
import type { Db } from '../clients/postgres';
import { openRoutingSnapshot, type EncodedLines } from '../db/routing-snapshot';
import type { SnapshotRecord } from '../domain/routing-snapshot';
import { unavailable } from './shared/errors';

/**
 * GET /v1/internal/routing/snapshot: where a routing engine starts. The stream's last sequence
 * is read before the database snapshot is taken, so every event not in the snapshot comes after
 * `streamSequence`; events before the snapshot that also come after it carry versions the
 * snapshot already has, and the consumer's version check drops them.
 */
/** A record of the answer, or lines PostgreSQL already encoded. */
export type SnapshotPart = SnapshotRecord | EncodedLines;

export class RoutingSnapshotService {
  constructor(private readonly deps: { db: Db; nats: NatsConnection; stream: string }) {}

  /** The parts, and `close` for an answer abandoned before its parts were read to the end. */
  async open(): Promise<{ parts: AsyncGenerator<SnapshotPart>; close(): Promise<void> }> {
    const { db, nats, stream } = this.deps;
    let lastSequence: number;
    try {
      lastSequence = (await (await nats.jetstreamManager()).streams.info(stream)).state.last_seq;
    } catch (err) {
      throw unavailable('NATS', `NATS did not answer for stream ${stream}: ${(err as Error).message}; retry.`);
    }
    const { parts, close } = await openRoutingSnapshot(db);
    const header: SnapshotRecord = {
      type: 'snapshot',
      stream,
      streamSequence: lastSequence + 1,
      takenAt: new Date().toISOString(),
    };
    return {
      parts: (async function* () {
        try {
          yield header;
          yield* parts;
        } finally {
          await close();
        }
      })(),
      close,
    };
  }
}
