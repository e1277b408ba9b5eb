import type { OutboxRelay } from '../events/outbox';

/** Publishing to JetStream goes through the outbox relay, so order and dedup hold everywhere. */
export function createEventActivities(relay: OutboxRelay) {
  return {
    /** Publishes every committed, unpublished event (this workflow's among them), in order. */
    async publishPendingEvents(): Promise<number> {
      return relay.flush();
    },
  };
}
