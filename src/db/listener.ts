import type { Pool, PoolClient } from 'pg';
import type { Logger } from '../platform/logger';

/**
 * One pooled connection that LISTENs on its channels for as long as it runs, and listens again a
 * second after it is lost. PostgreSQL delivers a NOTIFY only at its transaction's commit, and
 * only to connections listening then: `onListening` runs each time LISTEN takes effect (what
 * committed meanwhile was missed), `onLost` each time the connection ends unasked. A connection
 * that died without a word (a failover, a dropped route) is found by a heartbeat query: it
 * counts as lost when the query fails or does not answer in time.
 */

export interface ListenHandlers {
  onNotify(payload: string, channel: string): void;
  onListening(): void;
  onLost(err: Error): void;
}

const RELISTEN_MS = 1000;

export interface HeartbeatOptions {
  /** How often the connection is asked `SELECT 1` (10 s). */
  everyMs?: number;
  /** How long it has to answer (5 s). */
  timeoutMs?: number;
}

/** The connection of one listen() and its one way out. */
interface Held {
  client: PoolClient;
  /** Releases the connection once, however it ends; `err` undefined: stopped on purpose. */
  drop(err?: Error): void;
  beating?: boolean;
}

export class PgListener {
  private held?: Held;
  private running = false;
  private retry?: NodeJS.Timeout;
  /** Moves on every start and stop: a listen() begun before either gives its connection back. */
  private generation = 0;

  constructor(
    private readonly db: Pool,
    /** Identifiers: they are written into the LISTEN statement as they are. */
    private readonly channels: readonly string[],
    private readonly handlers: ListenHandlers,
    private readonly log: Logger,
    private readonly heartbeat: HeartbeatOptions = {},
  ) {
    for (const channel of channels) {
      if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`not a channel name: ${channel}`);
    }
  }

  get listening(): boolean {
    return this.held !== undefined;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.generation++;
    void this.listen(this.generation);
  }

  stop(): void {
    this.running = false;
    this.generation++;
    clearTimeout(this.retry);
    this.held?.drop();
  }

  private relistenLater(generation: number): void {
    if (this.running && generation === this.generation) {
      this.retry = setTimeout(() => void this.listen(generation), RELISTEN_MS).unref();
    }
  }

  private async listen(generation: number): Promise<void> {
    if (!this.running || generation !== this.generation) return;
    let client: PoolClient;
    try {
      client = await this.db.connect();
    } catch (err) {
      this.log.warn({ err: (err as Error).message, channels: this.channels }, 'could not LISTEN; trying again');
      this.relistenLater(generation);
      return;
    }
    let dropped = false;
    let heartbeat: NodeJS.Timeout | undefined;
    const held: Held = {
      client,
      drop: (err) => {
        if (dropped) return;
        dropped = true;
        clearInterval(heartbeat);
        client.removeAllListeners('notification');
        const wasListening = this.held === held;
        if (wasListening) this.held = undefined;
        // Destroyed rather than returned to the pool: closing the connection ends the LISTEN.
        client.release(err ?? true);
        if (!err) return;
        this.log.warn({ err: err.message, channels: this.channels }, 'LISTEN connection lost; listening again');
        if (wasListening) this.handlers.onLost(err);
        this.relistenLater(generation);
      },
    };
    client.on('notification', (n) => this.handlers.onNotify(n.payload ?? '', n.channel));
    client.on('error', (err) => held.drop(err));
    try {
      await client.query(this.channels.map((channel) => `LISTEN ${channel}`).join('; '));
    } catch (err) {
      held.drop(err as Error);
      return;
    }
    if (dropped) return;
    if (!this.running || generation !== this.generation) {
      held.drop();
      return;
    }
    this.held = held;
    heartbeat = setInterval(() => void this.beat(held), this.heartbeat.everyMs ?? 10_000).unref();
    this.handlers.onListening();
  }

  private async beat(held: Held): Promise<void> {
    if (held.beating) return; // the last one has not answered yet: its timeout decides
    held.beating = true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('LISTEN heartbeat timed out')), this.heartbeat.timeoutMs ?? 5000);
    });
    const answered = held.client.query('SELECT 1');
    answered.catch(() => undefined); // after a timeout, dropping the connection fails it too
    try {
      await Promise.race([answered, timeout]);
    } catch (err) {
      held.drop(err as Error);
    } finally {
      clearTimeout(timer);
      held.beating = false;
    }
  }
}
