import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { RequestListener } from 'node:http';
import https from 'node:https';
import tls, { type TLSSocket } from 'node:tls';
import { CONNECTIONS_CHECKING_INTERVAL_MS } from '../../platform/http-limits';
import type { Logger } from '../../platform/logger';

/**
 * The internal listener's TLS: client certificates are required and must chain to the CA
 * (rejectUnauthorized: no certificate, a foreign CA or an expired certificate means no TLS
 * session), and the certificate, key and CA files are re-read while the process runs, so
 * rotating them needs no restart.
 */

export interface TlsFiles {
  certPath: string;
  keyPath: string;
  caPath: string;
}

interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

/** setSecureContext() replaces the whole context: everything context-level goes in every time. */
function contextOptions(m: TlsMaterial): tls.SecureContextOptions {
  return { cert: m.cert, key: m.key, ca: m.ca, minVersion: 'TLSv1.2' };
}

const sameMaterial = (a: TlsMaterial, b: TlsMaterial) =>
  a.cert.equals(b.cert) && a.key.equals(b.key) && a.ca.equals(b.ca);

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Throws unless the set makes a working context. createSecureContext alone is not enough: it
 * accepts a CA file with no certificate in it, which would lock every client out.
 */
function validate(m: TlsMaterial): void {
  const cas = m.ca.toString('latin1').match(PEM_CERT) ?? [];
  if (cas.length === 0) throw new Error('the CA file holds no PEM certificate');
  for (const pem of cas) {
    if (!new X509Certificate(pem).ca) throw new Error('the CA file holds a certificate that is not a CA');
  }
  // Parses the certificate and key and checks that they belong together.
  tls.createSecureContext(contextOptions(m));
}

async function readMaterial(files: TlsFiles): Promise<TlsMaterial> {
  const [cert, key, ca] = await Promise.all([
    readFile(files.certPath),
    readFile(files.keyPath),
    readFile(files.caPath),
  ]);
  return { cert, key, ca };
}

export interface MtlsServerOptions {
  reloadMs: number;
  log: Logger;
}

/**
 * An HTTPS server requiring client certificates. Every `reloadMs` it re-reads the three files;
 * when they changed and make a valid context (PEM parses, key matches certificate), new
 * handshakes use them. A bad set (e.g. half-written during a rotation) is refused with a warning
 * and the previous context stays. Closing the server stops the re-reading.
 */
export function createMtlsServer(handler: RequestListener, files: TlsFiles, options: MtlsServerOptions): https.Server {
  // At start-up a bad file stops the process: there is no previous context to keep.
  let active: TlsMaterial = {
    cert: readFileSync(files.certPath),
    key: readFileSync(files.keyPath),
    ca: readFileSync(files.caPath),
  };
  validate(active);
  const server = https.createServer(
    {
      ...contextOptions(active),
      requestCert: true,
      rejectUnauthorized: true,
      connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
    },
    handler,
  );

  let refused: TlsMaterial | undefined;
  let reloading = false;
  const reload = async () => {
    if (reloading) return;
    reloading = true;
    try {
      const next = await readMaterial(files);
      if (sameMaterial(next, active) || (refused && sameMaterial(next, refused))) return;
      try {
        // Validates first: setSecureContext would half-apply a set that does not parse.
        validate(next);
      } catch (err) {
        refused = next;
        options.log.warn(
          { err: (err as Error).message },
          'internal TLS files changed but are not usable; keeping the previous ones',
        );
        return;
      }
      server.setSecureContext(contextOptions(next));
      active = next;
      refused = undefined;
      options.log.info({ ...describeCert(next.cert) }, 'internal TLS certificate and CA reloaded');
    } catch (err) {
      options.log.warn(
        { err: (err as Error).message },
        'internal TLS files could not be read; keeping the previous ones',
      );
    } finally {
      reloading = false;
    }
  };
  // Node checks the chain after the handshake and destroys an unauthorized socket: the reason
  // (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...) is on the socket, not the error.
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    const reason = socket.authorizationError ?? err.code ?? 'handshake failed';
    // Debug: anyone can knock on the port, and each refusal would otherwise be a log line.
    options.log.debug({ reason: String(reason), remote: socket.remoteAddress }, 'internal TLS handshake refused');
  });
  const timer = setInterval(() => void reload(), options.reloadMs);
  timer.unref();
  server.on('close', () => clearInterval(timer));
  return server;
}

function describeCert(pem: Buffer): Record<string, string> {
  try {
    const cert = new X509Certificate(pem);
    return { subject: cert.subject, validTo: cert.validTo, fingerprint256: cert.fingerprint256 };
  } catch {
    return {};
  }
}

/** OID of the clientAuth extended key usage. */
export const CLIENT_AUTH_EKU = '1.3.6.1.5.5.7.3.2';

/**
 * The `DNS:` and `URI:` subject alternative names, exactly as written. Node quotes an entry that
 * holds a comma or a quote as a JSON string, so the list is tokenised, never split on ", " (a
 * crafted SAN must not turn into two identities).
 */
export function sanIdentities(subjectAltName: string | undefined): string[] {
  const ids: string[] = [];
  const entry = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/gy;
  const text = subjectAltName ?? '';
  let m: RegExpExecArray | null;
  while (entry.lastIndex < text.length && (m = entry.exec(text)) !== null) {
    const [, kind, raw = ''] = m;
    if (kind !== 'DNS' && kind !== 'URI') continue;
    ids.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
  }
  return ids;
}

// A keep-alive connection presents its certificate once: decide once per socket.
const decided = new WeakMap<TLSSocket, string | null>();

/**
 * The allowlisted identity of the peer of an authorized TLS socket, or undefined: the
 * certificate must allow clientAuth and carry a `DNS:`/`URI:` SAN equal to an allowlist entry.
 * The subject CN is never looked at.
 */
export function allowedCaller(socket: TLSSocket, allowed: ReadonlySet<string>): string | undefined {
  const known = decided.get(socket);
  if (known !== undefined) return known ?? undefined;
  let caller: string | null = null;
  if (socket.authorized && typeof socket.getPeerCertificate === 'function') {
    const peer = socket.getPeerCertificate();
    if (peer.ext_key_usage?.includes(CLIENT_AUTH_EKU)) {
      caller = sanIdentities(peer.subjectaltname).find((id) => allowed.has(id)) ?? null;
    }
  }
  decided.set(socket, caller);
  return caller ?? undefined;
}

/** The internal API's request state: the caller's certificate identity (SAN) on the allowlist. */
export interface InternalState {
  caller: string;
}
