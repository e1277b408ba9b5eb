import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { parse } from 'yaml';
import { asConnector, standardPki, type StandardPki } from './support/certs';
import { adminToken, newOperatorRequest } from './support/harness';
import { isolatedDatabase, type IsolatedDatabase } from './support/isolated-db';
import { PrivateNats } from './support/private-nats';
import { PrivatePrometheus } from './support/private-prometheus';
import { startServiceProcess, type ServiceProcess } from './support/service-process';

/**
 * A real scrape: the service process and the health-ingestion process as `npm start` runs them
 * (on a NATS of the test's own), a Prometheus from Debian's package scraping both every second
 * with the alert rules loaded, and some traffic: an onboarding completed by a connector's report,
 * one that fails for want of one, a credential read, a rejected report. Every series the alert
 * rules and the Grafana dashboard query must then be in Prometheus.
 */

jest.setTimeout(120_000);

const root = path.resolve(__dirname, '..');
const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset']);
const PROMQL_OPERATORS = new Set(['and', 'or', 'unless']);

/** The metric names a PromQL expression reads: identifiers that are neither functions, keywords nor labels. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '') // label values, legend strings
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // range selectors
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ''); // label lists
  return [...bare.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)]
    .filter((m) => m[2] === undefined) // a function call
    .map((m) => m[1] ?? '')
    .filter((w) => !PROMQL_WORDS.has(w) && !PROMQL_OPERATORS.has(w) && !/^e\d*$/.test(w));
}

function queriedSeries(): { alerts: string[]; dashboard: string[] } {
  const rules = parse(readFileSync(path.join(root, 'monitoring/alerts.yml'), 'utf8')) as {
    groups: Array<{ rules: Array<{ expr: string }> }>;
  };
  const dashboard = JSON.parse(
    readFileSync(path.join(root, 'monitoring/grafana/dashboards/operator-management.json'), 'utf8'),
  ) as { panels: Array<{ targets: Array<{ expr: string }> }> };
  return {
    alerts: [...new Set(rules.groups.flatMap((g) => g.rules.flatMap((r) => metricNames(r.expr))))],
    dashboard: [...new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => metricNames(t.expr))))],
  };
}

describe('Prometheus scraping both processes', () => {
  let nats: PrivateNats;
  let nc: NatsConnection;
  let pki: StandardPki;
  let service: ServiceProcess;
  let health: ServiceProcess;
  let prometheus: PrivatePrometheus;
  let db: IsolatedDatabase;

  beforeAll(async () => {
    // A database of its own: its relay publishes to the private NATS, and must not take the
    // events of the test files running beside it.
    db = await isolatedDatabase();
    nats = await PrivateNats.start();
    nc = await connect({ servers: nats.url });
    pki = standardPki();
    [service, health] = await Promise.all([
      startServiceProcess({
        LOG_LEVEL: 'warn',
        DATABASE_URL: db.url,
        NATS_URL: nats.url,
        ONBOARDING_BIND_TIMEOUT_S: '3',
        INTERNAL_TLS: 'true',
        INTERNAL_TLS_CERT: pki.server.certPath,
        INTERNAL_TLS_KEY: pki.server.keyPath,
        INTERNAL_TLS_CA: pki.ca.certPath,
        INTERNAL_ALLOWED_CLIENTS: 'smpp-connector',
      }),
      startServiceProcess(
        { LOG_LEVEL: 'warn', DATABASE_URL: db.url, NATS_URL: nats.url, HEALTH_CONSUMER: `scrape-${randomUUID()}` },
        'health',
      ),
    ]);
    await Promise.all([service.ready(), health.ready()]);
    prometheus = await PrivatePrometheus.start(
      {
        'operator-management': [`127.0.0.1:${service.ports.ops}`],
        'operator-management-health': [`127.0.0.1:${health.ports.ops}`],
      },
      path.join(root, 'monitoring/alerts.yml'),
    );
  });
  afterAll(async () => {
    await prometheus?.stop();
    await Promise.all([service?.stop(), health?.stop()]);
    await nc?.close();
    await nats?.dispose();
    pki?.pki.remove();
    await db?.drop();
  });

  const admin = (p: string, init: RequestInit = {}) =>
    fetch(`http://127.0.0.1:${service.ports.admin}/v1/admin${p}`, {
      ...init,
      headers: { authorization: `Bearer ${adminToken()}`, 'content-type': 'application/json' },
    });

  async function onboard(): Promise<string> {
    const res = await admin('/operators', { method: 'POST', body: JSON.stringify(newOperatorRequest()) });
    expect(res.status).toBe(202);
    return ((await res.json()) as { operator: { id: string } }).operator.id;
  }

  /** A connector's report on connector.health.<id>, as the health process consumes it. */
  const publishReport = (id: string, body: unknown) => nc.publish(`connector.health.${id}`, JSON.stringify(body));

  it('holds every series the alert rules and the dashboard query', async () => {
    const active = await onboard();
    const failed = await onboard(); // no connector reports: it fails after ONBOARDING_BIND_TIMEOUT_S
    const deadline = Date.now() + 30_000;
    for (;;) {
      publishReport(active, {
        operatorId: active,
        status: 'UP',
        boundSessions: 1,
        inflight: 0,
        credentialsVersion: 1,
        connectorInstance: 'scrape-connector',
        reportedAt: new Date().toISOString(),
      });
      const res = await admin(`/operators/${active}`);
      if (((await res.json()) as { status: string }).status === 'ACTIVE') break;
      if (Date.now() > deadline) throw new Error('the onboarding never completed');
      await new Promise((r) => setTimeout(r, 500));
    }
    const read = await asConnector(service.ports.internal, pki)('GET', `/v1/internal/operators/${active}/credentials`);
    expect(read.status).toBe(200);
    publishReport(active, { operatorId: active, status: 'SIDEWAYS' }); // rejected: invalid

    const { alerts, dashboard } = queriedSeries();
    expect(alerts.length).toBeGreaterThanOrEqual(8);
    expect(dashboard.length).toBeGreaterThanOrEqual(15);
    let missing: string[];
    const until = Date.now() + 30_000;
    do {
      await new Promise((r) => setTimeout(r, 1000));
      const held = new Set(await prometheus.seriesNames());
      missing = [...new Set([...alerts, ...dashboard])].filter((name) => !held.has(name));
    } while (missing.length > 0 && Date.now() < until);
    expect(missing).toEqual([]);
    // The second onboarding, never bound, failed: its workflow's failure is among the series.
    expect(await prometheus.query(`temporal_workflow_failed_total{workflow_type="onboardOperator"}`)).toBeGreaterThan(
      0,
    );
    expect(failed).toMatch(/^[0-9a-f-]{36}$/);
    // And Prometheus evaluates every alert rule without an error.
    expect(await prometheus.unhealthyRules()).toEqual([]);
  });
});
