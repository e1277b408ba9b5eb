import type { OutboxRelay } from '../events/outbox';

/** Publishing to JetStream goes through the outbox relay, so order and dedup hold everywhere. */
export function createNatsActivities(relay: OutboxRelay) {
  return {
    /** Publishes every committed, unpublished event (this workflow's among them), in order. */
    async publishPendingEvents(): Promise<number> {
      return relay.flush();
    },
  };
}

export type NatsActivities = ReturnType<typeof createNatsActivities>;
