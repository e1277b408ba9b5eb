import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildAdminOpenApi } from '../api/admin-app';
import { buildInternalOpenApi } from '../api/internal-app';

/**
 * `npm run openapi`: writes the OpenAPI documents of both listeners to openapi/admin.json and
 * openapi/internal.json, the copies kept in the repo (test/openapi.test.ts fails when they drift).
 *
 * The repo root is the nearest directory above this file holding package.json, so the script
 * works from src/scripts (tsx) and from any compiled layout (dist/scripts, dist/src/scripts).
 */

export function repoRoot(from: string = __dirname): string {
  let dir = from;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${from}`);
    dir = parent;
  }
  return dir;
}

export const OPENAPI_DOCUMENTS = { admin: buildAdminOpenApi, internal: buildInternalOpenApi } as const;
export type Listener = keyof typeof OPENAPI_DOCUMENTS;

export const openApiPath = (listener: Listener, root: string = repoRoot()) =>
  path.join(root, 'openapi', `${listener}.json`);

/** The exact text kept in the repo: 2-space indented JSON with a trailing newline. */
export const renderOpenApi = (listener: Listener): string =>
  `${JSON.stringify(OPENAPI_DOCUMENTS[listener](), null, 2)}\n`;

export function writeOpenApi(listener: Listener, file: string = openApiPath(listener)): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, renderOpenApi(listener));
  return file;
}

if (require.main === module) {
  for (const listener of Object.keys(OPENAPI_DOCUMENTS) as Listener[]) {
    const file = writeOpenApi(listener);
    process.stdout.write(`wrote ${path.relative(process.cwd(), file) || file}\n`);
  }
}
