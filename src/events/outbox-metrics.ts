import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { OutboxRelay } from './outbox';

/**
 * The outbox's health for Prometheus: backlog size and age (read from PostgreSQL at scrape time,
 * so every replica reports the shared truth) and what this process's relay published.
 */
export function instrumentOutbox(registry: Registry, relay: OutboxRelay): void {
  let last: Promise<Awaited<ReturnType<OutboxRelay['backlog']>>> | undefined;
  // One query per scrape serves all three gauges.
  const backlog = () => {
    // NaN while PostgreSQL does not answer: the rest of /metrics must still be served.
    last ??= relay
      .backlog()
      .catch(() => ({ pending: NaN, oldestAgeS: NaN, parked: NaN }))
      .finally(() => setTimeout(() => (last = undefined), 1000).unref());
    return last;
  };
  new Gauge({
    name: 'outbox_backlog_events',
    help: 'Committed events not yet published to JetStream',
    registers: [registry],
    async collect() {
      this.set((await backlog()).pending);
    },
  });
  new Gauge({
    name: 'outbox_oldest_pending_age_seconds',
    help: 'Age of the oldest unpublished event (0 when none)',
    registers: [registry],
    async collect() {
      this.set((await backlog()).oldestAgeS);
    },
  });
  new Gauge({
    name: 'outbox_parked_events',
    help: 'Events parked because they can never be published; each needs ops (see the runbook)',
    registers: [registry],
    async collect() {
      this.set((await backlog()).parked);
    },
  });
  const published = new Counter({
    name: 'outbox_published_total',
    help: 'Config events this process published, by type (subject)',
    labelNames: ['type'],
    registers: [registry],
  });
  const commitToAck = new Histogram({
    name: 'outbox_commit_to_ack_seconds',
    help: 'From an event committed to PostgreSQL to its JetStream ack, per event this process published',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const failures = new Counter({
    name: 'outbox_publish_failures_total',
    help: 'Publish attempts that failed (NATS down, no stream); retried',
    registers: [registry],
  });
  const parked = new Counter({
    name: 'outbox_parked_total',
    help: 'Events this process parked',
    registers: [registry],
  });
  relay.instrument({
    published: (type, sinceCommitS) => {
      published.inc({ type });
      commitToAck.observe(sinceCommitS);
    },
    publishFailed: () => failures.inc(),
    parked: () => parked.inc(),
  });
}
