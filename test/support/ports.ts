import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * A TCP port free right now on 127.0.0.1, for a private server a test starts. Chosen below the
 * kernel's ephemeral range: a port the kernel handed out (listen on 0) is one it may next give
 * an outgoing connection as its local port, and the server started a moment later then fails
 * with EADDRINUSE (seen: a service process of the secret canary).
 */
export async function freePort(): Promise<number> {
  const below = ephemeralStart();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = randomInt(10_000, below);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port found in 10000–${below - 1}`);
}

function ephemeralStart(): number {
  try {
    const [start] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (start !== undefined && start > 11_000) return start;
  } catch {
    // Not Linux: IANA's dynamic range starts at 49152.
  }
  return 49_152;
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
