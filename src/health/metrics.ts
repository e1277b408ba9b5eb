import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { RejectReason } from './report';

/** Prometheus metrics of health ingestion, registered on the process's registry. */
export interface HealthMetrics {
  consumed: Counter<'source'>;
  rejected: Counter<'reason' | 'source'>;
  /** Reports in the stream the durable consumer has not delivered yet: the consumer's lag. */
  pending: Gauge;
  batchSeconds: Histogram<'outcome'>;
  statusChanges: Counter;
  /** Reports logged but not cached: made more than a minute before they were handled. */
  expired: Counter;
  /** Status changes cached but not yet published: the health event outbox's backlog. */
  eventsPending: Gauge;
}

export type ReportSource = 'nats' | 'http';

const cache = new WeakMap<Registry, HealthMetrics>();

/** One set per registry: the HTTP path and the consumer of one process share it. */
export function healthMetrics(registry: Registry): HealthMetrics {
  const existing = cache.get(registry);
  if (existing) return existing;
  const metrics: HealthMetrics = {
    consumed: new Counter({
      name: 'health_reports_consumed_total',
      help: 'Health reports logged, cached and acknowledged',
      labelNames: ['source'],
      registers: [registry],
    }),
    rejected: new Counter({
      name: 'health_reports_rejected_total',
      help: 'Health reports rejected (never cached, never retried)',
      labelNames: ['reason', 'source'],
      registers: [registry],
    }),
    pending: new Gauge({
      name: 'health_consumer_pending',
      help: 'Reports in the stream not yet delivered to the durable consumer (lag)',
      registers: [registry],
    }),
    batchSeconds: new Histogram({
      name: 'health_batch_seconds',
      help: 'Time to log, cache, publish and signal one batch',
      labelNames: ['outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    expired: new Counter({
      name: 'health_reports_expired_total',
      help: 'Health reports logged but not cached: made more than a minute before they were handled (a backlog, or a connector clock running slow)',
      registers: [registry],
    }),
    statusChanges: new Counter({
      name: 'health_status_changes_total',
      help: 'operator.health events published (status changes)',
      registers: [registry],
    }),
    eventsPending: new Gauge({
      name: 'health_events_pending',
      help: 'operator.health events cached but not yet published (the health event outbox)',
      registers: [registry],
    }),
  };
  cache.set(registry, metrics);
  return metrics;
}

export function countRejected(metrics: HealthMetrics, reason: RejectReason, source: ReportSource): void {
  metrics.rejected.inc({ reason, source });
}
