/**
 * A server under benchmark, in a process of its own so that its figures are its own and not
 * shared with the load generator's event loop: `tsx bench/serve.ts <kind>`, configured like the
 * service (DATABASE_URL, …). Prints `listening <url>` once it serves; SIGTERM closes it.
 *
 * Kinds (KINDS below): `admin` (the whole admin API), `admin-and-relay` (with the outbox relay, as
 * a service process runs), `bare-longest-prefix` (bare Koa and the SQL of one longest-prefix
 * lookup: the floor route explain is measured against), `floor-of-a-change` (bare Koa, a one-row
 * commit and a NATS publish: the floor config propagation is measured against), `internal-plain`
 * (the internal API over plain HTTP: the routing snapshot), `bare-admin-read` (the floor of an admin read).
 */
import { bodyParser } from '@koa/bodyparser';
import Koa from 'koa';
import pino from 'pino';
import { inTransaction } from '../src/clients/postgres';
import { createAdminApp } from '../src/api/admin-app';
import { createInternalApp } from '../src/api/internal-app';
import { findOperator } from '../src/db/operators';
import { listRoutingRules } from '../src/db/routing-rules';
import { prefixesOf } from '../src/domain/route-order';
import { loadConfig, type Config } from '../src/platform/config';
import { createLogger, logDestination, type Logger } from '../src/platform/logger';
import { openResources, type Resources } from '../src/platform/resources';
import { createAdminServices, createInternalServices } from '../src/services';
import { listen, urlOf } from './bench-service';

/** The floor of an admin read: the same src/db functions behind a bare Koa route, no auth, validation or error mapping. */
function bareAdminRead(resources: Resources): Koa {
  const app = new Koa();
  app.use(async (ctx) => {
    const [, , id, rules] = ctx.path.split('/');
    const operator = await findOperator(resources.db, id ?? '');
    ctx.body = rules
      ? { version: operator?.version, routingRules: await listRoutingRules(resources.db, id ?? '') }
      : operator;
  });
  return app;
}

function bareLongestPrefix(resources: Resources): Koa {
  const app = new Koa();
  app.use(async (ctx) => {
    const { rows } = await resources.db.query({
      name: 'bench-longest-prefix',
      text: `SELECT prefix_table_id, prefix FROM ops.prefix_table_entries
              WHERE deleted_at IS NULL AND prefix = ANY($1) ORDER BY length(prefix) DESC LIMIT 1`,
      values: [prefixesOf(ctx.path.slice(1))],
    });
    ctx.body = rows[0] ?? null;
  });
  return app;
}

/**
 * The floor of a config change: bare Koa, a one-row commit (a row per slot, as each operator has
 * its own), a core NATS publish of the change's key on BENCH_FLOOR_SUBJECT.
 */
function floorOfAChange(resources: Resources): Koa {
  const subject = process.env.BENCH_FLOOR_SUBJECT;
  if (!subject) throw new Error('the floor server publishes on BENCH_FLOOR_SUBJECT: set it');
  const app = new Koa();
  app.use(bodyParser());
  app.use(async (ctx) => {
    const { name } = ctx.request.body as { name: string };
    await inTransaction(resources.db, (tx) =>
      tx.query('UPDATE bench_floor SET n = n + 1 WHERE id = $1', [Number(ctx.path.slice(1))]),
    );
    resources.nats.publish(subject, JSON.stringify({ key: name }));
    ctx.body = { ok: true };
  });
  return app;
}

/** What a server of that kind runs beside its app; `onStop` gets what ends it before the clients close. */
type Kind = (
  config: Config,
  log: Logger,
  resources: Resources,
  onStop: (stop: () => Promise<void>) => void,
) => Pick<Koa, 'listen'>;

const KINDS: Record<string, Kind> = {
  admin: (config, log, resources, onStop) => {
    const services = createAdminServices(resources, config, log);
    services.routingExplain.start();
    onStop(async () => services.routingExplain.stop());
    return createAdminApp({ config, db: resources.db, log, ...services });
  },
  /** The admin API with the outbox relay beside it, as a service process runs both. */
  'admin-and-relay': (config, log, resources, onStop) => {
    resources.relay.start(config.nats.outboxPollMs);
    return KINDS.admin!(config, log, resources, onStop);
  },
  /** The internal API over plain HTTP, no allowlist (INTERNAL_TLS=false): the snapshot, not TLS. */
  'internal-plain': (config, log, resources) => {
    const plain = { ...config, internalTls: { ...config.internalTls, enabled: false } };
    return createInternalApp({ config: plain, log, ...createInternalServices(resources, plain, log) });
  },
  'bare-admin-read': (_config, _log, resources) => bareAdminRead(resources),
  'bare-longest-prefix': (_config, _log, resources) => bareLongestPrefix(resources),
  'floor-of-a-change': (_config, _log, resources) => floorOfAChange(resources),
};

async function main(kind: string | undefined): Promise<void> {
  const make = kind === undefined ? undefined : KINDS[kind];
  if (!make) throw new Error(`unknown server kind "${kind}": one of ${Object.keys(KINDS).join(', ')}`);
  const config = loadConfig();
  // Logged as the service logs (LOG_LEVEL's default, info: a line per request) through the same
  // asynchronous destination, into /dev/null; warnings and errors also on stdout, which the
  // bench shows.
  const lines = pino.multistream([
    { level: 'info', stream: logDestination('/dev/null') },
    { level: 'warn', stream: logDestination(1) },
  ]);
  const log = createLogger('info', `bench-${kind}`, lines);
  const resources = await openResources(config, log);
  const stops: Array<() => Promise<void>> = [];
  const app = make(config, log, resources, (stop) => stops.push(stop));
  const server = await listen(app);
  process.once('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    void Promise.allSettled(stops.map((stop) => stop()))
      .then(() => resources.close())
      .finally(() => process.exit(0));
  });
  console.log(`listening ${urlOf(server)}`);
}

main(process.argv[2]).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
