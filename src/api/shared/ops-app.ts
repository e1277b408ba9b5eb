import Koa from 'koa';
import { Gauge, type Registry } from 'prom-client';
import { metricsText } from '../../platform/metrics';
import { checkReadiness, type ReadinessChecks } from '../../platform/readiness';
import { sendProblem } from './problem';

/**
 * The ops port: liveness, readiness and Prometheus metrics. No auth; bind it to a network only
 * the platform (kubelet, Prometheus) reaches.
 *
 * - GET /healthz: 200 while the process serves requests; never looks at dependencies, so a
 *   flapping dependency does not get the pod restarted.
 * - GET /readyz: 200 when every dependency answers, else 503 problem+json naming those down.
 * - GET /metrics: the registry in Prometheus text format, with its text sources (the Temporal SDK's).
 */
export function createOpsApp(checks: ReadinessChecks, registry: Registry, required?: ReadonlySet<string>): Koa {
  const app = new Koa();
  instrumentReadiness(registry, checks, required);

  const routes: Record<string, Koa.Middleware> = {
    '/healthz': (ctx) => {
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { status: 'ok' };
    },
    '/readyz': async (ctx) => {
      const report = await checkReadiness(checks, { required });
      ctx.set('Cache-Control', 'no-store');
      if (report.ok) {
        ctx.body = { status: 'ready', degraded: report.degraded, checks: report.checks };
        return;
      }
      const down = Object.entries(report.checks)
        .filter(([name, state]) => state !== 'up' && !report.degraded.includes(name))
        .map(([name]) => name);
      sendProblem(ctx, {
        type: '/problems/not-ready',
        title: 'Not ready',
        status: 503,
        detail: `down: ${down.join(', ')}`,
        degraded: report.degraded,
        checks: report.checks,
      });
    },
    '/metrics': async (ctx) => {
      ctx.set('Cache-Control', 'no-store');
      ctx.type = registry.contentType;
      ctx.body = await metricsText(registry);
    },
  };

  app.use(async (ctx, next) => {
    const route = routes[ctx.path];
    if (!route) {
      sendProblem(ctx, {
        type: '/problems/not-found',
        title: 'Not found',
        status: 404,
        detail: `No route for ${ctx.method} ${ctx.path}`,
      });
      return;
    }
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.set('Allow', 'GET, HEAD');
      sendProblem(ctx, {
        type: '/problems/method-not-allowed',
        title: 'Method not allowed',
        status: 405,
        detail: `${ctx.method} is not allowed on ${ctx.path}`,
      });
      return;
    }
    await route(ctx, next);
  });

  return app;
}

/**
 * `process_ready` (1 when /readyz would answer 200) and `dependency_up{dependency}` (each check),
 * from one run of the checks per scrape: what the readiness alert watches.
 */
function instrumentReadiness(registry: Registry, checks: ReadinessChecks, required?: ReadonlySet<string>): void {
  let last: ReturnType<typeof checkReadiness> | undefined;
  const report = () => {
    last ??= checkReadiness(checks, { required }).finally(() => setTimeout(() => (last = undefined), 1000).unref());
    return last;
  };
  new Gauge({
    name: 'process_ready',
    help: 'Whether this process is ready (1) or not (0), as /readyz answers',
    registers: [registry],
    async collect() {
      this.set((await report()).ok ? 1 : 0);
    },
  });
  new Gauge({
    name: 'dependency_up',
    help: 'Whether each readiness check passes (1) or not (0); not every one makes the process unready',
    labelNames: ['dependency'],
    registers: [registry],
    async collect() {
      for (const [dependency, state] of Object.entries((await report()).checks)) {
        this.set({ dependency }, state === 'up' ? 1 : 0);
      }
    },
  });
}
