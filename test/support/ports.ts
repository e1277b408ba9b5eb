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
  const [low, high] = outsideEphemeralRange();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = randomInt(low, high);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port found in ${low}–${high - 1}`);
}

/** [low, high): a thousand ports or more below the kernel's ephemeral range, or else above it. */
function outsideEphemeralRange(): [number, number] {
  let [start, end] = [49_152, 65_535]; // IANA's dynamic range, where /proc does not tell
  try {
    [start = start, end = end] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
  } catch {
    // Not Linux.
  }
  if (start > 11_000) return [10_000, start];
  if (end < 64_535) return [end + 1, 65_536];
  throw new Error(`the ephemeral port range ${start}–${end} leaves no room for test servers`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
