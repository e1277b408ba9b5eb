import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { loadConfig, type Config } from '../../src/platform/config';

/**
 * A migrated database of the calling test file's own, copied from the template the global setup
 * made. For tests whose outbox must not be drained by the relays of test files running beside
 * them (they all share the test database).
 */
export interface IsolatedDatabase {
  url: string;
  config: Config['postgres'];
  drop(): Promise<void>;
}

export async function isolatedDatabase(): Promise<IsolatedDatabase> {
  const base = loadConfig().postgres;
  const source = new URL(base.url);
  const template = `${source.pathname.slice(1)}_template`;
  const name = `${source.pathname.slice(1)}_iso_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const adminUrl = Object.assign(new URL(source), { pathname: '/postgres' }).toString();
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  } finally {
    await admin.end();
  }
  const url = Object.assign(new URL(source), { pathname: `/${name}` }).toString();
  return {
    url,
    config: { ...base, url },
    async drop() {
      const client = new Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
