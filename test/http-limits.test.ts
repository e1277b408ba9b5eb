import { createServer, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { applyHttpLimits, type HttpLimits } from '../src/platform/http-limits';

/** The limits every listener gets, on a real server and real sockets. */

const limits: HttpLimits = {
  headersTimeoutMs: 300,
  requestTimeoutMs: 2_000,
  idleTimeoutMs: 5_000,
  keepAliveTimeoutMs: 1_000,
  maxConnections: 2,
};

describe('HTTP limits', () => {
  let server: Server;
  let port: number;
  const sockets: net.Socket[] = [];

  beforeAll(async () => {
    server = applyHttpLimits(
      createServer({ connectionsCheckingInterval: 100 }, (_req, res) => res.end('ok')),
      limits,
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** A socket and everything the server sends on it until it closes (or `waitMs` passes). */
  async function talk(send: string, waitMs: number): Promise<{ answer: string; closed: boolean }> {
    const socket = net.connect(port, '127.0.0.1');
    sockets.push(socket);
    let answer = '';
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(send);
    const closed = await Promise.race([
      new Promise<boolean>((resolve) => socket.once('close', () => resolve(true))),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), waitMs)),
    ]);
    return { answer, closed };
  }

  it('sets every limit on the server', () => {
    expect(server.headersTimeout).toBe(limits.headersTimeoutMs);
    expect(server.requestTimeout).toBe(limits.requestTimeoutMs);
    expect(server.keepAliveTimeout).toBe(limits.keepAliveTimeoutMs);
    expect(server.timeout).toBe(limits.idleTimeoutMs);
    expect(server.maxConnections).toBe(limits.maxConnections);
  });

  it('answers 408 and closes a connection whose headers do not arrive in time', async () => {
    const { answer, closed } = await talk('GET / HTTP/1.1\r\nHost: x\r\n', 3_000);
    expect(closed).toBe(true);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('refuses connections beyond the cap', async () => {
    const held = [net.connect(port, '127.0.0.1'), net.connect(port, '127.0.0.1')];
    sockets.push(...held);
    await Promise.all(held.map((s) => new Promise((resolve) => s.once('connect', resolve))));
    await new Promise((r) => setTimeout(r, 50));
    const third = await talk('GET / HTTP/1.1\r\nHost: x\r\n\r\n', 1_000);
    expect(third).toEqual({ answer: '', closed: true });
  });
});
