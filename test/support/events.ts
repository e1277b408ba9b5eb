import { DeliverPolicy, type Consumer, type ConsumerMessages, type NatsConnection } from 'nats';
import { ensureStream } from '../../src/clients/nats';
import { problemsOf } from '../../src/events/catalog';
import type { EventEnvelope } from '../../src/events/envelope';

/**
 * Reads the service's event stream from a point in time, as the routing engine would, and keeps
 * what concerns the operators a test cares about.
 */
export class EventWatcher {
  private readonly seen: EventEnvelope[] = [];
  /** The Nats-Msg-Id header of each message in `seen`. */
  readonly headers: string[] = [];
  private messages?: ConsumerMessages;
  private loop?: Promise<void>;

  private constructor(private readonly consumer: Consumer) {}

  static async start(nc: NatsConnection, stream: string, filter = 'operator.>'): Promise<EventWatcher> {
    // As the service does at start: a suite that runs first on a fresh NATS finds no stream yet.
    await ensureStream(nc, stream);
    const js = nc.jetstream();
    const consumer = await js.consumers.get(stream, {
      filterSubjects: filter,
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: new Date(Date.now() - 1000).toISOString(),
    });
    const watcher = new EventWatcher(consumer);
    watcher.loop = watcher.run();
    // consume() resolves asynchronously; wait until the subscription exists.
    while (!watcher.messages) await new Promise((r) => setTimeout(r, 10));
    return watcher;
  }

  private async run(): Promise<void> {
    this.messages = await this.consumer.consume();
    for await (const m of this.messages) {
      this.seen.push(m.json<EventEnvelope>());
      this.headers.push(m.headers?.get('Nats-Msg-Id') ?? '');
    }
  }

  /** The Nats-Msg-Id header the event arrived with. */
  msgIdOf(event: EventEnvelope): string | undefined {
    return this.headers[this.seen.indexOf(event)];
  }

  /** Events of one operator so far, in stream order. */
  of(operatorId: string): EventEnvelope[] {
    const events = this.seen.filter((e) => e.operatorId === operatorId);
    // Every event a test looks at must match the catalog that docs/asyncapi.yaml follows.
    const offCatalog = events.flatMap((e) => problemsOf(e).map((problem) => `${e.type} ${e.eventId}: ${problem}`));
    if (offCatalog.length > 0) {
      throw new Error(`events that do not match src/events/catalog.ts:\n${offCatalog.join('\n')}`);
    }
    return events;
  }

  /** Waits until `done` holds for the operator's events, or fails after timeoutMs. */
  async waitFor(
    operatorId: string,
    done: (events: EventEnvelope[]) => boolean,
    timeoutMs = 15_000,
  ): Promise<EventEnvelope[]> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const events = this.of(operatorId);
      if (done(events)) return events;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `events of ${operatorId} never matched; got ${JSON.stringify(this.of(operatorId).map((e) => [e.type, e.version]))}`,
    );
  }

  async stop(): Promise<void> {
    this.messages?.stop();
    await this.loop;
  }
}
