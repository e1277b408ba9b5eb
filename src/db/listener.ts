import type { Pool, PoolClient } from 'pg';
import type { Logger } from '../platform/logger';

/**
 * One pooled connection that LISTENs on a channel for as long as it runs, and listens again a
 * second after it is lost. PostgreSQL delivers a NOTIFY only at its transaction's commit, and
 * only to connections listening then: `onListening` runs each time LISTEN takes effect (what
 * committed meanwhile was missed), `onLost` each time the connection ends unasked.
 */

export interface ListenHandlers {
  onNotify(payload: string): void;
  onListening(): void;
  onLost(err: Error): void;
}

const RELISTEN_MS = 1000;

export class PgListener {
  private client?: PoolClient;
  private running = false;
  private retry?: NodeJS.Timeout;

  constructor(
    private readonly db: Pool,
    /** An identifier: it is written into the LISTEN statement as it is. */
    private readonly channel: string,
    private readonly handlers: ListenHandlers,
    private readonly log: Logger,
  ) {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`not a channel name: ${channel}`);
  }

  get listening(): boolean {
    return this.client !== undefined;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.listen();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners('notification');
      // Destroyed rather than returned to the pool: closing the connection ends the LISTEN.
      client.release(true);
    }
  }

  private relistenLater(): void {
    if (this.running) this.retry = setTimeout(() => void this.listen(), RELISTEN_MS).unref();
  }

  private async listen(): Promise<void> {
    if (!this.running) return;
    let client: PoolClient;
    try {
      client = await this.db.connect();
    } catch (err) {
      this.log.warn({ err: (err as Error).message, channel: this.channel }, 'could not LISTEN; trying again');
      this.relistenLater();
      return;
    }
    let dropped = false;
    // One way out for this connection, however it fails: released once, listened again once.
    const drop = (err: Error) => {
      if (dropped) return;
      dropped = true;
      client.removeAllListeners('notification');
      const wasListening = this.client === client;
      if (wasListening) this.client = undefined;
      client.release(err);
      this.log.warn({ err: err.message, channel: this.channel }, 'LISTEN connection lost; listening again');
      if (wasListening) this.handlers.onLost(err);
      this.relistenLater();
    };
    client.on('notification', (n) => this.handlers.onNotify(n.payload ?? ''));
    client.on('error', drop);
    try {
      await client.query(`LISTEN ${this.channel}`);
    } catch (err) {
      drop(err as Error);
      return;
    }
    if (dropped) return;
    if (!this.running) {
      dropped = true;
      client.release(true);
      return;
    }
    this.client = client;
    this.handlers.onListening();
  }
}
