import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createInternalApp } from '../../src/api/internal-app';
import { createLogger } from '../../src/platform/logger';
import { createInternalServices } from '../../src/services';
import type { Harness } from './harness';

/** The internal API (plain HTTP, as INTERNAL_TLS=false runs it) beside a harness, with its routing routes. */
export async function listenInternal(h: Harness): Promise<{ url: string; close(): Promise<void> }> {
  const log = createLogger('silent');
  const app = createInternalApp({ config: h.config, log, ...createInternalServices(h.resources, h.config, log) });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/internal`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** GET /prefix-tables/{id}/entries as a consumer's table loader. */
export function tableLoader(internalUrl: string) {
  return async (
    id: string,
    held?: { version: number },
  ): Promise<{ version: number; contentHash: string; prefixes: string[] } | 'unchanged' | undefined> => {
    const res = await fetch(`${internalUrl}/prefix-tables/${id}/entries`, {
      headers: { accept: 'application/json', ...(held && { 'if-none-match': `"${held.version}"` }) },
    });
    if (res.status === 304 || res.status === 404) {
      await res.body?.cancel(); // nothing to read: the connection goes back to the pool
      return res.status === 304 ? 'unchanged' : undefined;
    }
    if (res.status !== 200) throw new Error(`entries of ${id} answered ${res.status}`);
    return (await res.json()) as { version: number; contentHash: string; prefixes: string[] };
  };
}
