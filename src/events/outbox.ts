import { randomUUID } from 'node:crypto';
import type { PoolClient } from 'pg';
import type { NatsConnection } from 'nats';
import type { Db } from '../clients/postgres';
import type { Logger } from '../logger';
import { configSubject, type ConfigChange, type EventEnvelope } from './envelope';

/**
 * The one path every event leaves by. A change writes its event into ops.event_outbox in the
 * same transaction (so it exists exactly when the change commits); the relay then publishes
 * pending rows in commit order with Nats-Msg-Id = eventId, so a retry after a crash between
 * publish and mark is dropped by JetStream's duplicate window instead of delivered twice.
 */

export interface NewConfigEvent {
  change: ConfigChange;
  operatorId: string;
  version: number;
  actor: string;
  data: Record<string, unknown>;
}

export async function appendConfigEvent(tx: PoolClient, event: NewConfigEvent): Promise<EventEnvelope> {
  const envelope: EventEnvelope = {
    eventId: randomUUID(),
    type: configSubject(event.change),
    operatorId: event.operatorId,
    version: event.version,
    occurredAt: new Date().toISOString(),
    actor: event.actor,
    data: event.data,
  };
  await tx.query(
    `INSERT INTO ops.event_outbox (event_id, subject, operator_id, version, payload, created_by, updated_by)
     VALUES ($1, $2, $3, $4, $5, $6, $6)`,
    [envelope.eventId, envelope.type, envelope.operatorId, envelope.version, envelope, event.actor],
  );
  return envelope;
}

// Any fixed 64-bit key: serialises relays across replicas so per-operator order holds.
export const RELAY_LOCK_KEY = 0x6f70_6d67_6d74;
const BATCH = 100;

interface PendingRow {
  id: string;
  event_id: string;
  subject: string;
  payload: EventEnvelope;
}

export class OutboxRelay {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    private readonly db: Db,
    private readonly nc: NatsConnection,
    private readonly log: Logger,
  ) {}

  /**
   * Publishes everything pending, oldest first; returns how many events left. Each event is
   * marked in its own statement right after JetStream acknowledged it, so a crash republishes at
   * most one event, which the duplicate window drops.
   *
   * `ifIdle`: give up at once when another relay holds the lock (it, or the poller after it,
   * will publish). Request paths and the poller use it so a NATS outage, during which the holder
   * waits out publish timeouts, cannot pile up waiting connections.
   */
  async flush(options: { ifIdle?: boolean } = {}): Promise<number> {
    const client = await this.db.connect();
    try {
      // A session lock: released by unlock below, or by PostgreSQL if the connection dies.
      const { rows } = await client.query<{ ok: boolean }>(
        options.ifIdle ? 'SELECT pg_try_advisory_lock($1) AS ok' : 'SELECT true AS ok FROM pg_advisory_lock($1)',
        [RELAY_LOCK_KEY],
      );
      if (!rows[0]?.ok) return 0;
      try {
        return await this.publishPending(client);
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [RELAY_LOCK_KEY]);
      }
    } finally {
      client.release();
    }
  }

  private async publishPending(client: PoolClient): Promise<number> {
    const js = this.nc.jetstream();
    let sent = 0;
    for (;;) {
      const { rows } = await client.query<PendingRow>(
        `SELECT id, event_id, subject, payload FROM ops.event_outbox
          WHERE published_at IS NULL ORDER BY id LIMIT ${BATCH}`,
      );
      for (const row of rows) {
        // msgID travels as the Nats-Msg-Id header.
        await js.publish(row.subject, JSON.stringify(row.payload), { msgID: row.event_id });
        await client.query('UPDATE ops.event_outbox SET published_at = now(), updated_by = $2 WHERE id = $1', [
          row.id,
          'system:outbox-relay',
        ]);
        sent++;
      }
      if (rows.length < BATCH) return sent;
    }
  }

  /** Polls in the background so events left by a crash or a NATS outage still go out. */
  start(intervalMs: number): void {
    const tick = async () => {
      this.running = this.flush({ ifIdle: true }).catch((err: unknown) =>
        this.log.warn({ err: (err as Error).message }, 'outbox relay could not publish; will retry'),
      );
      await this.running;
      if (this.timer) this.timer = setTimeout(() => void tick(), intervalMs);
    };
    this.timer = setTimeout(() => void tick(), intervalMs);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
