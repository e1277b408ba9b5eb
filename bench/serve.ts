/**
 * A server under benchmark, in a process of its own so that its figures are its own and not
 * shared with the load generator's event loop: `tsx bench/serve.ts <kind>`, configured like the
 * service (DATABASE_URL, …). Prints `listening <url>` once it serves; SIGTERM closes it.
 *
 * Kinds: `admin` (the whole admin API), `bare-longest-prefix` (bare Koa and the SQL of one
 * longest-prefix lookup: the floor route explain is measured against).
 */
import Koa from 'koa';
import { createAdminApp } from '../src/api/admin-app';
import { prefixesOf } from '../src/domain/route-order';
import { loadConfig } from '../src/platform/config';
import { createLogger } from '../src/platform/logger';
import { openResources, type Resources } from '../src/platform/resources';
import { createAdminServices } from '../src/services';
import { listen, urlOf } from './bench-service';

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

async function main(kind: string | undefined): Promise<void> {
  const config = loadConfig();
  const log = createLogger('warn', `bench-${kind}`);
  const resources = await openResources(config, log);
  const app =
    kind === 'admin'
      ? createAdminApp({ config, db: resources.db, log, ...createAdminServices(resources, config.temporal, log) })
      : kind === 'bare-longest-prefix'
        ? bareLongestPrefix(resources)
        : undefined;
  if (!app) throw new Error(`unknown server kind "${kind}": admin or bare-longest-prefix`);
  const server = await listen(app);
  process.once('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    void resources.close().finally(() => process.exit(0));
  });
  console.log(`listening ${urlOf(server)}`);
}

main(process.argv[2]).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
