import { collectDefaultMetrics, Registry } from 'prom-client';

export { Registry };

/** A fresh registry with the default process and Node.js metrics (one per process, or per test). */
export function createMetricsRegistry(): Registry {
  const register = new Registry();
  collectDefaultMetrics({ register });
  return register;
}
