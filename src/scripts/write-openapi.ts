import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildAdminOpenApi } from '../api/admin-app';

/**
 * `npm run openapi`: writes the admin API's OpenAPI document to openapi/admin.json, the copy kept
 * in the repo (test/openapi.test.ts fails when the two drift).
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

export const adminOpenApiPath = (root: string = repoRoot()) => path.join(root, 'openapi', 'admin.json');

/** The exact text kept in the repo: 2-space indented JSON with a trailing newline. */
export const renderAdminOpenApi = (): string => `${JSON.stringify(buildAdminOpenApi(), null, 2)}\n`;

export function writeAdminOpenApi(file: string = adminOpenApiPath()): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, renderAdminOpenApi());
  return file;
}

if (require.main === module) {
  const file = writeAdminOpenApi();
  process.stdout.write(`wrote ${path.relative(process.cwd(), file) || file}\n`);
}
