import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { readPrefixes } from '../../src/api/prefix-tables-body';
import type { PrefixEntry } from '../../src/services/prefix-tables';

/**
 * The import's body reader against a real HTTP server whose client goes away mid-body: what the
 * reader throws is the client's (a 400), not the service's (a 500 in the logs and metrics).
 */

/** Reads `readPrefixes` on the server side of one request; what it read and how it ended. */
async function readOnServer(
  headers: Record<string, string>,
  send: (req: http.ClientRequest) => void,
): Promise<{ read: PrefixEntry[]; error: unknown }> {
  let done!: (outcome: { read: PrefixEntry[]; error: unknown }) => void;
  const outcome = new Promise<{ read: PrefixEntry[]; error: unknown }>((resolve) => (done = resolve));
  const server = http.createServer(async (req, res) => {
    const read: PrefixEntry[] = [];
    try {
      for await (const entry of readPrefixes(req, 1024 * 1024).entries) read.push(entry);
      done({ read, error: undefined });
    } catch (error) {
      done({ read, error });
    }
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const req = http.request({
      port: (server.address() as AddressInfo).port,
      host: '127.0.0.1',
      method: 'PUT',
      headers,
    });
    req.on('error', () => undefined); // the client's own side of the abort
    send(req);
    return await outcome;
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** The first half of a body, then the client's socket closed under it. */
const cutShort = (first: Buffer) => (req: http.ClientRequest) => {
  req.flushHeaders();
  req.write(first, () => setTimeout(() => req.destroy(), 50));
};

describe('readPrefixes, when the client goes away mid-body', () => {
  it.each([
    ['CSV', 'text/csv', undefined, Buffer.from('2547\n2541\n25')],
    ['JSON', 'application/json', undefined, Buffer.from('{"prefixes": ["2547", "25')],
    ['gzip CSV', 'text/csv', 'gzip', gzipSync('2547\n2541\n'.repeat(10_000)).subarray(0, 200)],
  ])('throws a 400 "could not be read whole" for %s', async (_what, type, encoding, first) => {
    const headers: Record<string, string> = { 'content-type': type, 'transfer-encoding': 'chunked' };
    if (encoding) headers['content-encoding'] = encoding;
    const { error } = await readOnServer(headers, cutShort(first));
    expect(error).toMatchObject({ status: 400, message: 'The request body could not be read whole.' });
  });

  it('reads a whole body to its end (the same server, the body sent whole)', async () => {
    const { read, error } = await readOnServer({ 'content-type': 'text/csv' }, (req) => req.end('2547\n+2541\n'));
    expect(error).toBeUndefined();
    expect(read).toEqual([
      { prefix: '2547', at: 1 },
      { prefix: '2541', at: 2 },
    ]);
  });
});
