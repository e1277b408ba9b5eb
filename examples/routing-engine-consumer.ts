/**
 * How a peer follows operator config changes: `npx tsx examples/routing-engine-consumer.ts`
 * with the local stack up, then PATCH an operator through the admin API and watch it apply.
 */
import { connect } from 'nats';
import { consumeConfigEvents, InMemoryAppliedVersions } from '../src/consumer/config-events';

async function main(): Promise<void> {
  const nc = await connect({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' });
  const routes = new Map<string, unknown>();
  const consumer = await consumeConfigEvents(nc, {
    stream: process.env.NATS_STREAM ?? 'OPERATOR_EVENTS',
    durable: 'example-routing-engine',
    versions: new InMemoryAppliedVersions(),
    async apply(event, gap) {
      // Most config events carry the whole operator; after a gap a real consumer would re-read
      // GET /v1/internal/operators/{id}/config before trusting its view.
      if (gap) console.warn(`version gap before ${event.operatorId} v${event.version}: re-read its config`);
      routes.set(event.operatorId, event.data);
    },
    onOutcome(event, outcome) {
      console.log(event.type, event.operatorId, `v${event.version}`, outcome.applied ? 'applied' : 'skipped (stale)');
    },
  });
  process.once('SIGINT', () => {
    void consumer.stop().then(() => nc.drain());
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
