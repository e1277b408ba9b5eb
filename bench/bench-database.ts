import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import type { Config } from '../src/platform/config';
import type { Cleanup } from './cleanup';

const ROOT = path.resolve(__dirname, '..');

/**
 * A throwaway, migrated database beside the service's own, dropped by the cleanup (so a bench
 * never touches real data). Returns its connection URL.
 */
export async function createBenchDatabase(config: Config, cleanup: Cleanup, dbName: string): Promise<string> {
  const adminUrl = Object.assign(new URL(config.postgres.url), { pathname: '/postgres' });
  const benchUrl = Object.assign(new URL(config.postgres.url), { pathname: `/${dbName}` });
  const admin = new Client({ connectionString: adminUrl.toString(), application_name: 'operator-management-bench' });
  await admin.connect();
  cleanup.add('close admin connection', () => admin.end());
  await admin.query(`CREATE DATABASE "${dbName}"`);
  cleanup.add(`drop database ${dbName}`, () => admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`));
  try {
    await promisify(execFile)(path.join(ROOT, 'scripts', 'migrate.sh'), ['up'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: benchUrl.toString() },
    });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`migrating ${dbName} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }
  return benchUrl.toString();
}
