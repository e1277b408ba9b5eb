import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { bundleWorkflowCode } from '@temporalio/worker';
import './env';

const root = path.resolve(__dirname, '../..');

/** Once per run: a fresh, migrated test database and one workflow bundle for every test file. */
export default async function globalSetup(): Promise<void> {
  const url = new URL(process.env.DATABASE_URL ?? '');
  const dbName = url.pathname.slice(1);
  const admin = new Client({ connectionString: Object.assign(new URL(url), { pathname: '/postgres' }).toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${dbName}`);
  } finally {
    await admin.end();
  }
  execFileSync(path.join(root, 'scripts/migrate.sh'), ['up'], { env: process.env, stdio: 'pipe' });
  // A copy nobody connects to, for tests that need a database of their own (isolated-db.ts).
  const again = new Client({ connectionString: Object.assign(new URL(url), { pathname: '/postgres' }).toString() });
  await again.connect();
  try {
    await again.query(`DROP DATABASE IF EXISTS ${dbName}_template WITH (FORCE)`);
    await again.query(`CREATE DATABASE ${dbName}_template TEMPLATE ${dbName}`);
  } finally {
    await again.end();
  }

  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(root, 'src/workflows/index.ts'),
    workflowInterceptorModules: [path.join(root, 'src/workflows/request-id-interceptor.ts')],
    logger: {
      log: () => undefined,
      trace: () => undefined,
      debug: () => undefined,
      info: () => undefined,
      warn: console.warn,
      error: console.error,
    },
  });
  const bundlePath = process.env.TEMPORAL_WORKFLOW_BUNDLE ?? '';
  mkdirSync(path.dirname(bundlePath), { recursive: true });
  writeFileSync(bundlePath, code);
}
