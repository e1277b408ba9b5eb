import type { Redis } from 'ioredis';
import type { NatsConnection } from 'nats';
import { healthOutboxKey } from '../domain/health';
import type { Logger } from '../platform/logger';
import type { HealthMetrics } from './metrics';

const PAGE = 500;

/**
 * Publishes the `operator.health` events the cache's writes appended to the outbox stream
 * (src/health/cache.ts), oldest first, each with `Nats-Msg-Id` = its eventId, and removes each
 * once JetStream has acknowledged it. A failed publish leaves it and everything after it for the
 * next flush: nothing is lost to a NATS outage or a crash, and a repeat (two replicas flushing at
 * once, a crash between ack and removal) falls in JetStream's duplicate window.
 */
export class HealthEventOutbox {
  readonly key: string;
  private running?: Promise<number>;
  private again = false;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly deps: { redis: Redis; nats: NatsConnection; metrics: HealthMetrics },
    private readonly subject: string,
  ) {
    this.key = healthOutboxKey(subject);
  }

  /** Flushes now; a call during a flush makes that flush run once more. Resolves to the events published. */
  flush(): Promise<number> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      let published = 0;
      try {
        do {
          this.again = false;
          published += await this.drain();
        } while (this.again);
      } finally {
        this.running = undefined;
      }
      return published;
    })();
    return this.running;
  }

  /** Flushes every `intervalMs` as well, for events left by a failed flush or another process. */
  start(intervalMs: number, log: Logger): void {
    const failed = (err: unknown) =>
      log.warn({ err: (err as Error).message }, 'operator.health events not published; the next flush retries');
    this.timer = setInterval(() => void this.flush().catch(failed), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async drain(): Promise<number> {
    const { redis, nats, metrics } = this.deps;
    const js = nats.jetstream();
    let published = 0;
    for (;;) {
      const entries = await redis.xrange(this.key, '-', '+', 'COUNT', PAGE);
      if (entries.length === 0) break;
      const done: string[] = [];
      try {
        for (const [id, fields] of entries) {
          const { eventId, event } = fieldsOf(fields);
          await js.publish(this.subject, event, { msgID: eventId });
          done.push(id);
          metrics.statusChanges.inc();
        }
      } finally {
        if (done.length > 0) await redis.xdel(this.key, ...done);
        published += done.length;
      }
    }
    metrics.eventsPending.set(await redis.xlen(this.key));
    return published;
  }
}

function fieldsOf(flat: string[]): { eventId: string; event: string } {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(flat[i]!, flat[i + 1]!);
  return { eventId: map.get('eventId') ?? '', event: map.get('event') ?? '' };
}
