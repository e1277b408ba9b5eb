import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startHarness, type Harness } from './support/harness';

/**
 * The API reference page as a browser shows it: headless Chromium (Debian's package, installed by
 * the stack script) loads /v1/admin/reference, Swagger UI renders the served document, and the
 * page lists every operation of openapi/admin.json. Nothing is fetched from outside the service.
 */

jest.setTimeout(60_000);
const run = promisify(execFile);

const doc = JSON.parse(readFileSync(path.resolve(__dirname, '../openapi/admin.json'), 'utf8')) as {
  paths: Record<string, Record<string, unknown>>;
};
const operations = Object.entries(doc.paths).flatMap(([p, item]) =>
  Object.keys(item).map((method) => ({ method: method.toUpperCase(), path: p })),
);

/** Decodes the few entities Chromium's serialiser writes inside attribute values and text. */
const text = (html: string) => html.replace(/&amp;/g, '&').replace(/&quot;/g, '"');

describe('the admin API reference page', () => {
  let h: Harness;
  let profile: string;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
    profile = mkdtempSync(path.join(tmpdir(), 'chromium-'));
  });
  afterAll(async () => {
    await h?.stop();
    rmSync(profile, { recursive: true, force: true });
  });

  it('is public and lists every operation of the document, rendered in Chromium', async () => {
    const url = `${h.baseUrl}/reference`;
    const page = await fetch(url); // no token
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)/); // no CDN

    const { stdout } = await run(
      'chromium',
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--no-first-run',
        `--user-data-dir=${profile}`,
        '--virtual-time-budget=20000',
        '--dump-dom',
        url,
      ],
      { maxBuffer: 64 * 1024 * 1024, timeout: 50_000 },
    );
    const dom = text(stdout);
    const rendered = new Set(
      [...dom.matchAll(/opblock-summary-method">([A-Z]+)<[\s\S]*?data-path="([^"]+)"/g)].map((m) => `${m[1]} ${m[2]}`),
    );
    expect(operations.length).toBeGreaterThan(20);
    const missing = operations.map((op) => `${op.method} ${op.path}`).filter((op) => !rendered.has(op));
    expect(missing).toEqual([]);
  });
});
