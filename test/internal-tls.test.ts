import { copyFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import pino from 'pino';
import { allowedCaller, createMtlsServer, sanIdentities, type TlsFiles } from '../src/api/shared/internal-tls';
import { failureOf, mtlsGet, standardPki, type CertFiles, type StandardPki } from './support/certs';

/**
 * The internal listener's TLS layer over real handshakes with certificates made here: who gets a
 * TLS session, who gets 403, and certificate/CA files swapped while the server runs.
 */

const RELOAD_MS = 100;

async function eventually<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, RELOAD_MS / 2));
  }
}

describe('internal listener TLS', () => {
  let p: StandardPki;
  let live: TlsFiles;
  let server: Server;
  let port: number;
  const logs: string[] = [];
  const handshakeFailures: string[] = [];
  let sessions = 0;

  beforeAll(async () => {
    p = standardPki();
    // The files the server watches; the tests overwrite them as a rotation would.
    live = {
      certPath: p.pki.write('live-server.crt', p.server.cert),
      keyPath: p.pki.write('live-server.key', p.server.key),
      caPath: p.pki.write('live-ca.crt', p.ca.cert),
    };
    const log = pino(
      { level: 'debug' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          logs.push(chunk.toString());
          done();
        },
      }),
    );
    const allowed = new Set(['smpp-connector', 'spiffe://sms/connector']);
    server = createMtlsServer(
      (req, res) => {
        const caller = allowedCaller(req.socket as TLSSocket, allowed);
        res.statusCode = caller ? 200 : 403;
        res.end(JSON.stringify({ caller: caller ?? null }));
      },
      live,
      { reloadMs: RELOAD_MS, log },
    );
    server.on('secureConnection', () => sessions++);
    // Node verifies the chain once the handshake is through and destroys an unauthorized socket
    // before any byte of HTTP: the reason is on the socket.
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) =>
      handshakeFailures.push(`${err.code ?? err.message}/${String(socket.authorizationError)}`),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    p.pki.remove();
  });

  const get = (client?: CertFiles, ca: Buffer = p.ca.cert) => mtlsGet(port, '/', ca, client);

  /** Runs a request that must not get a TLS session; returns the client's and the server's errors. */
  async function refused(client: CertFiles | undefined): Promise<{ client: string; server: string }> {
    const before = { sessions, failures: handshakeFailures.length };
    const code = await failureOf(get(client));
    await eventually(
      async () => handshakeFailures.length,
      (n) => n > before.failures,
    );
    expect(sessions).toBe(before.sessions);
    return { client: code, server: handshakeFailures.slice(before.failures).join(' ') };
  }

  it('serves a client whose SAN (DNS or URI) is on the allowlist and carries clientAuth', async () => {
    const byDns = await get(p.allowed);
    expect(byDns.status).toBe(200);
    expect(JSON.parse(byDns.text)).toEqual({ caller: 'smpp-connector' });
    const byUri = await get(p.allowedByUri);
    expect(byUri.status).toBe(200);
    expect(JSON.parse(byUri.text)).toEqual({ caller: 'spiffe://sms/connector' });
  });

  it.each([
    ['a valid certificate whose SAN is not on the list', 'stranger'],
    ['the allowed name in the CN only', 'cnOnly'],
    ['the allowed SAN without any extended key usage', 'noEku'],
  ] as const)('answers 403 to %s', async (_what, which) => {
    const res = await get(p[which]);
    expect(res.status).toBe(403);
  });

  it('gives no TLS session to a client without a certificate', async () => {
    const { client, server: seen } = await refused(undefined);
    expect(client).toMatch(/CERTIFICATE_REQUIRED|ECONNRESET/);
    expect(seen).toContain('PEER_DID_NOT_RETURN_A_CERTIFICATE');
  });

  it('gives no TLS session to a client of a foreign CA', async () => {
    const { client, server: seen } = await refused(p.foreign);
    expect(client).toBe('ECONNRESET');
    expect(seen).toContain('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  it('gives no TLS session to an expired client certificate', async () => {
    const { client, server: seen } = await refused(p.expired);
    expect(client).toBe('ECONNRESET');
    expect(seen).toContain('CERT_HAS_EXPIRED');
    expect(logs.join('')).toMatch(/"reason":"CERT_HAS_EXPIRED".*"msg":"internal TLS handshake refused"/);
  });

  it('gives no TLS session to a certificate made for servers only', async () => {
    const { client, server: seen } = await refused(p.serverOnly);
    expect(client).toBe('ECONNRESET');
    expect(seen).toContain('INVALID_PURPOSE');
  });

  it('accepts a CA rotated in at run time, and drops the old one when it is removed, without restart', async () => {
    expect(await failureOf(get(p.foreign))).not.toMatch(/^no error/);

    // Overlap: both CAs in the bundle.
    writeFileSync(live.caPath, Buffer.concat([p.ca.cert, p.foreignCa.cert]));
    const overlap = await eventually(
      () => get(p.foreign).catch(() => undefined),
      (res) => res?.status === 200,
    );
    expect(overlap?.status).toBe(200);
    expect((await get(p.allowed)).status).toBe(200);

    // The old CA leaves the bundle: its clients lose their TLS session.
    writeFileSync(live.caPath, p.foreignCa.cert);
    const after = await eventually(
      () => failureOf(get(p.allowed)),
      (code) => !code.startsWith('no error'),
    );
    expect(after).not.toMatch(/^no error/);
    expect((await get(p.foreign)).status).toBe(200);

    copyFileSync(p.ca.certPath, live.caPath);
    await eventually(
      () => get(p.allowed).catch(() => undefined),
      (res) => res?.status === 200,
    );
    expect(logs.join('')).toContain('internal TLS certificate and CA reloaded');
  });

  it('serves a renewed server certificate without restart', async () => {
    const before = (await get(p.allowed)).serverFingerprint;
    const renewed = p.pki.issue(p.ca, 'server-renewed', {
      cn: 'localhost',
      san: 'DNS:localhost,IP:127.0.0.1',
      eku: 'serverAuth',
    });
    // Key first, then certificate: for a moment the pair does not match and must be refused.
    const refusals = () => logs.join('').split('are not usable; keeping the previous ones').length - 1;
    const refusedBefore = refusals();
    writeFileSync(live.keyPath, renewed.key);
    await eventually(
      async () => refusals(),
      (n) => n > refusedBefore,
    );
    expect((await get(p.allowed)).serverFingerprint).toBe(before);
    writeFileSync(live.certPath, renewed.cert);
    const res = await eventually(
      () => get(p.allowed),
      (r) => r.serverFingerprint !== before,
    );
    expect(res.status).toBe(200);
    expect(res.serverFingerprint).not.toBe(before);
    expect(logs.join('')).toContain('are not usable; keeping the previous ones');
  });

  it('keeps serving with the previous files when a file turns unreadable or garbage', async () => {
    const before = await get(p.allowed);
    const warnings = logs.length;
    writeFileSync(live.caPath, 'not a certificate');
    await eventually(
      async () => logs.length,
      (n) => n > warnings,
    );
    const during = await get(p.allowed);
    expect(during.status).toBe(200);
    expect(during.serverFingerprint).toBe(before.serverFingerprint);
    expect(logs.slice(warnings).join('')).toContain('keeping the previous ones');
    copyFileSync(p.ca.certPath, live.caPath);
  });
});

describe('sanIdentities', () => {
  it('reads DNS and URI entries exactly, and a quoted entry as one identity', () => {
    expect(sanIdentities('DNS:a, URI:spiffe://x/y, IP Address:127.0.0.1, email:x@y')).toEqual(['a', 'spiffe://x/y']);
    // Node quotes an entry holding ", ": it must not become a second, allowlisted identity.
    expect(sanIdentities('DNS:"evil, DNS:smpp-connector"')).toEqual(['evil, DNS:smpp-connector']);
    expect(sanIdentities(undefined)).toEqual([]);
  });
});
