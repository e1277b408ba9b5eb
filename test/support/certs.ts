import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { Config } from '../../src/platform/config';

/**
 * Certificates made in the test with the `openssl` CLI (EC P-256: fast to generate). Leaf
 * certificates are issued with `openssl ca`, which takes explicit validity dates, so an
 * expired certificate needs no clock tricks.
 */

export interface CertFiles {
  certPath: string;
  keyPath: string;
  cert: Buffer;
  key: Buffer;
}

export interface Ca extends CertFiles {
  name: string;
}

export interface IssueOptions {
  cn: string;
  /** e.g. `DNS:smpp-connector,URI:spiffe://sms/connector`; omitted: no SAN extension. */
  san?: string;
  /** e.g. `clientAuth`; omitted: no extended key usage extension. */
  eku?: string;
  /** `YYYYMMDDHHMMSSZ`; defaults: valid from an hour ago for 30 days. */
  notBefore?: string;
  notAfter?: string;
}

const stamp = (d: Date) => `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;

export class TestPki {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'omt-pki-'));
  private serial = 1;

  private openssl(args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: 'pipe' });
  }

  private files(name: string): CertFiles {
    const certPath = path.join(this.dir, `${name}.crt`);
    const keyPath = path.join(this.dir, `${name}.key`);
    return { certPath, keyPath, cert: readFileSync(certPath), key: readFileSync(keyPath) };
  }

  private newKey(name: string): void {
    this.openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
  }

  ca(name: string): Ca {
    this.newKey(name);
    this.openssl([
      'req', '-x509', '-new', '-key', `${name}.key`, '-days', '30', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-out', `${name}.crt`,
    ]); // prettier-ignore
    writeFileSync(path.join(this.dir, `${name}.index`), '');
    return { name, ...this.files(name) };
  }

  issue(ca: Ca, name: string, opts: IssueOptions): CertFiles {
    this.newKey(name);
    this.openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${opts.cn}`, '-out', `${name}.csr`]);
    const ext = [opts.san && `subjectAltName=${opts.san}`, opts.eku && `extendedKeyUsage=${opts.eku}`]
      .filter(Boolean)
      .join('\n');
    writeFileSync(
      path.join(this.dir, `${name}.cnf`),
      [
        '[ca]', 'default_ca = d',
        '[d]', `database = ${ca.name}.index`, `serial = ${name}.serial`, 'new_certs_dir = .', 'default_md = sha256',
        'policy = p', 'unique_subject = no', 'copy_extensions = none',
        '[p]', 'commonName = supplied',
        '[ext]', ext || 'basicConstraints = CA:FALSE',
      ].join('\n'),
    ); // prettier-ignore
    writeFileSync(path.join(this.dir, `${name}.serial`), `${(this.serial++).toString(16).padStart(4, '0')}\n`);
    const now = Date.now();
    this.openssl([
      'ca', '-batch', '-notext', '-config', `${name}.cnf`, '-extensions', 'ext',
      '-cert', ca.certPath, '-keyfile', ca.keyPath, '-in', `${name}.csr`, '-out', `${name}.crt`,
      '-startdate', opts.notBefore ?? stamp(new Date(now - 3600_000)),
      '-enddate', opts.notAfter ?? stamp(new Date(now + 30 * 86400_000)),
    ]); // prettier-ignore
    return this.files(name);
  }

  /** Writes a file into the PKI directory (e.g. a CA bundle) and returns its path. */
  write(name: string, content: Buffer | string): string {
    const file = path.join(this.dir, name);
    writeFileSync(file, content);
    return file;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The set the internal-API tests need: two CAs, a server and one client per case. */
export function standardPki() {
  const pki = new TestPki();
  const ca = pki.ca('ca');
  const foreignCa = pki.ca('foreign-ca');
  const clientAuth = 'clientAuth';
  return {
    pki,
    ca,
    foreignCa,
    server: pki.issue(ca, 'server', { cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1', eku: 'serverAuth' }),
    allowed: pki.issue(ca, 'allowed', {
      cn: 'whatever',
      san: 'DNS:smpp-connector,URI:spiffe://sms/connector',
      eku: clientAuth,
    }),
    allowedByUri: pki.issue(ca, 'allowed-uri', { cn: 'x', san: 'URI:spiffe://sms/connector', eku: clientAuth }),
    stranger: pki.issue(ca, 'stranger', { cn: 'stranger', san: 'DNS:stranger', eku: clientAuth }),
    /** The allowed name only in the CN: identity comes from the SAN, so this is a stranger. */
    cnOnly: pki.issue(ca, 'cn-only', { cn: 'smpp-connector', san: 'DNS:not-it', eku: clientAuth }),
    /** Allowed SAN but no extended key usage at all. */
    noEku: pki.issue(ca, 'no-eku', { cn: 'no-eku', san: 'DNS:smpp-connector' }),
    /** Allowed SAN but a server-only certificate. */
    serverOnly: pki.issue(ca, 'server-only', { cn: 'srv', san: 'DNS:smpp-connector', eku: 'serverAuth' }),
    foreign: pki.issue(foreignCa, 'foreign', { cn: 'foreign', san: 'DNS:smpp-connector', eku: clientAuth }),
    expired: pki.issue(ca, 'expired', {
      cn: 'expired',
      san: 'DNS:smpp-connector',
      eku: clientAuth,
      notBefore: '20200101000000Z',
      notAfter: '20200102000000Z',
    }),
  };
}

export type StandardPki = ReturnType<typeof standardPki>;

export interface TlsAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** SHA-256 fingerprint of the server certificate this connection saw. */
  serverFingerprint: string;
}

/** One request on a fresh connection (no keep-alive: every call is a new handshake). */
export function mtlsGet(port: number, urlPath: string, ca: Buffer, client?: CertFiles): Promise<TlsAnswer> {
  return mtlsRequest(port, 'GET', urlPath, ca, client);
}

/** As mtlsGet, with a method and an optional JSON body. */
export function mtlsRequest(
  port: number,
  method: string,
  urlPath: string,
  ca: Buffer,
  client?: CertFiles,
  json?: unknown,
): Promise<TlsAnswer> {
  return new Promise((resolve, reject) => {
    const body = json === undefined ? undefined : JSON.stringify(json);
    const req = https.request(
      {
        method,
        host: '127.0.0.1',
        port,
        path: urlPath,
        ca,
        servername: 'localhost',
        ...(client ? { cert: client.cert, key: client.key } : {}),
        ...(body ? { headers: { 'content-type': 'application/json' } } : {}),
        agent: false,
      },
      (res) => {
        const serverFingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, serverFingerprint }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The error code of a request that must fail, or 'no error' (so the assertion shows what came back). */
export async function failureOf(answer: Promise<TlsAnswer>): Promise<string> {
  return answer.then(
    (a) => `no error: HTTP ${a.status}`,
    (err: NodeJS.ErrnoException) => err.code ?? err.message,
  );
}

/** The internal listener's TLS settings for a PKI of standardPki(): its server certificate, its CA, `allowed` callers. */
export function internalTls(pki: StandardPki, allowedClients: string[]): Config['internalTls'] {
  return {
    enabled: true,
    certPath: pki.server.certPath,
    keyPath: pki.server.keyPath,
    caPath: pki.ca.certPath,
    allowedClients,
  };
}

/** Requests to an internal listener as the allowed connector of a standardPki() set. */
export function asConnector(port: number, pki: StandardPki) {
  return (method: string, urlPath: string, json?: unknown) =>
    mtlsRequest(port, method, urlPath, pki.ca.cert, pki.allowed, json);
}
