import type { Middleware } from 'koa';
import { Counter, Histogram, type Registry } from 'prom-client';

/**
 * HTTP metrics of one listener, by route template (`/v1/admin/operators/:id`, never the id
 * itself: one series per route, not per operator), method and status: a counter and a latency
 * histogram. A request no route matched counts under `route="unmatched"`.
 */

const cache = new WeakMap<Registry, { requests: Counter; seconds: Histogram }>();

function metricsOf(registry: Registry) {
  let metrics = cache.get(registry);
  if (!metrics) {
    metrics = {
      requests: new Counter({
        name: 'http_requests_total',
        help: 'HTTP requests answered, by listener, route template, method and status',
        labelNames: ['listener', 'route', 'method', 'status'],
        registers: [registry],
      }),
      seconds: new Histogram({
        name: 'http_request_duration_seconds',
        help: 'Time to answer an HTTP request (until the handler returned; streams not included)',
        labelNames: ['listener', 'route', 'method'],
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [registry],
      }),
    };
    cache.set(registry, metrics);
  }
  return metrics;
}

export function httpMetrics(registry: Registry, listener: 'admin' | 'internal'): Middleware {
  const { requests, seconds } = metricsOf(registry);
  return async (ctx, next) => {
    const stop = seconds.startTimer();
    try {
      await next();
    } finally {
      const route = (ctx as { _matchedRoute?: unknown })._matchedRoute;
      const labels = { listener, route: typeof route === 'string' ? route : 'unmatched', method: ctx.method };
      stop(labels);
      requests.inc({ ...labels, status: String(ctx.status) });
    }
  };
}
