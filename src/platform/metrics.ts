import { collectDefaultMetrics, Registry } from 'prom-client';

export { Registry };

/** A fresh registry with the default process and Node.js metrics (one per process, or per test). */
export function createMetricsRegistry(): Registry {
  const register = new Registry();
  collectDefaultMetrics({ register });
  return register;
}

/**
 * Metrics another exporter serves as Prometheus text (the Temporal SDK's), added to a registry's
 * /metrics answer. A source that fails is left out of that scrape, never the whole answer.
 */
const textSources = new WeakMap<Registry, Array<() => Promise<string>>>();

export function addTextMetrics(registry: Registry, source: () => Promise<string>): void {
  textSources.set(registry, [...(textSources.get(registry) ?? []), source]);
}

/** The registry's metrics and those of its text sources, in Prometheus text format. */
export async function metricsText(registry: Registry): Promise<string> {
  const sources = textSources.get(registry) ?? [];
  const extra = await Promise.all(sources.map((source) => source().catch(() => '')));
  return [await registry.metrics(), ...extra.filter((t) => t !== '')].join('\n');
}
