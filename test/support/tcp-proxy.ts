import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './ports';

/**
 * A TCP proxy in front of a shared server (Vault, NATS, PostgreSQL): `cut()` closes its port and every
 * connection through it, as an outage looks to the service, and `restore()` opens the same port
 * again; `stall()` silences the connections open now, `reset()` resets them. The shared server itself is never touched.
 */
export class TcpProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  /** Silenced by stall(): destroyed by cut() and stop() like the rest. */
  private readonly stalled = new Set<Socket>();

  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy(await freePort(), target);
    await proxy.restore();
    return proxy;
  }

  get cutOff(): boolean {
    return this.server === undefined;
  }

  async restore(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      const upstream = createConnection(this.target);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = once(server, 'close');
    server.close();
    for (const s of [...this.sockets, ...this.stalled]) s.destroy();
    this.stalled.clear();
    await closed;
  }

  /**
   * The connections open now go silent (nothing forwarded either way, nothing closed), as a
   * connection looks whose route died without a word; new ones are forwarded as before.
   */
  stall(): void {
    for (const s of this.sockets) {
      s.unpipe();
      s.pause();
      this.stalled.add(s);
    }
    this.sockets.clear();
  }

  /** Every connection open now reset (TCP RST) both ways, as a failover or a dropped route ends it. */
  reset(): void {
    for (const s of this.sockets) s.resetAndDestroy();
  }

  stop(): Promise<void> {
    return this.cut();
  }
}
