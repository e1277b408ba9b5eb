import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import Koa from 'koa';
import { createAdminAuth, type AuthState } from '../src/api/shared/auth';
import { problemMiddleware } from '../src/api/shared/problem';
import type { Config } from '../src/platform/config';
import { createLogger } from '../src/platform/logger';

/**
 * The admin JWT check on its own, in a tiny Koa app: a JWKS URL served locally (production) and a
 * shared secret (local use). Only an admin-scoped token with a subject, signed by the expected key
 * with an expected algorithm, issuer and audience, gets through.
 */

const ISSUER = 'https://idp.test/';
const AUDIENCE = 'operator-management';
const KID = 'key-1';

interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

function close(server: http.Server | undefined): Promise<void> {
  return new Promise((resolve) => (server?.listening ? server.close(() => resolve()) : resolve()));
}

async function startApp(config: Config['jwt']): Promise<{ server: http.Server; url: string }> {
  const app = new Koa<AuthState>();
  app.use(problemMiddleware(createLogger('silent')));
  app.use(createAdminAuth(config));
  app.use((ctx) => {
    ctx.body = { actor: ctx.state.actor };
  });
  const server = http.createServer(app.callback());
  return { server, url: await listen(server) };
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

async function call(url: string, token?: string): Promise<Response> {
  return fetch(`${url}/whoami`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
}

/** An expiry five minutes ahead: the service refuses tokens without one. */
const soon = () => Math.floor(Date.now() / 1000) + 300;

/** A 401 problem; `detail`, when given, says which check refused the token. */
async function expectUnauthorized(res: Response, detail?: string): Promise<void> {
  expect(res.status).toBe(401);
  expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await res.json()) as ProblemBody;
  expect(body).toMatchObject({ status: 401, title: 'Unauthorized', ...(detail === undefined ? {} : { detail }) });
}

/** What the verifier says of a token whose signature or algorithm it refuses. */
const NOT_VALID = 'The token is not valid.';

describe('admin auth with a JWKS URL', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  let jwksServer: http.Server | undefined;
  let app: http.Server | undefined;
  let url: string;

  const sign = (payload: object, options: jwt.SignOptions = {}, key: KeyObject = privateKey) =>
    jwt.sign({ exp: soon(), ...payload }, key, {
      algorithm: 'RS256',
      keyid: KID,
      issuer: ISSUER,
      audience: AUDIENCE,
      ...options,
    });

  beforeAll(async () => {
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: KID, alg: 'RS256', use: 'sig' };
    jwksServer = http.createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    const jwksUri = `${await listen(jwksServer)}/.well-known/jwks.json`;
    const started = await startApp({ jwksUri, issuer: ISSUER, audience: AUDIENCE, maxAgeS: 3600 });
    app = started.server;
    url = started.url;
  });

  afterAll(async () => {
    await close(app);
    await close(jwksServer);
  });

  it('accepts a valid admin token and takes the actor from sub', async () => {
    const res = await call(url, sign({ sub: 'alice', scope: 'admin' }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ actor: 'alice' });
  });

  it('accepts admin among several scopes in a scope string', async () => {
    const res = await call(url, sign({ sub: 'bob', scope: 'read admin write' }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ actor: 'bob' });
  });

  it('accepts admin in an scp array', async () => {
    const res = await call(url, sign({ sub: 'carol', scp: ['read', 'admin'] }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ actor: 'carol' });
  });

  it('accepts admin in an scp string', async () => {
    const res = await call(url, sign({ sub: 'dave', scp: 'admin other' }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ actor: 'dave' });
  });

  it('refuses a request without a token', async () => {
    await expectUnauthorized(await call(url));
  });

  it('refuses a non-Bearer authorization', async () => {
    const res = await fetch(`${url}/whoami`, { headers: { authorization: 'Basic YWRtaW46YWRtaW4=' } });
    await expectUnauthorized(res);
  });

  it('refuses garbage', async () => {
    await expectUnauthorized(await call(url, 'not.a.jwt'));
  });

  it('refuses a wrong audience', async () => {
    await expectUnauthorized(await call(url, sign({ sub: 'alice', scope: 'admin' }, { audience: 'other-service' })));
  });

  it('refuses a wrong issuer', async () => {
    await expectUnauthorized(await call(url, sign({ sub: 'alice', scope: 'admin' }, { issuer: 'https://evil.test/' })));
  });

  it('refuses an expired token and says so', async () => {
    const token = sign({ sub: 'alice', scope: 'admin', exp: Math.floor(Date.now() / 1000) - 60 });
    const res = await call(url, token);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    const body = (await res.clone().json()) as ProblemBody;
    expect(body.detail).toMatch(/expired/);
    await expectUnauthorized(res);
  });

  it('refuses an unknown kid', async () => {
    await expectUnauthorized(
      await call(url, sign({ sub: 'alice', scope: 'admin' }, { keyid: 'key-unknown' })),
      NOT_VALID,
    );
  });

  it('refuses a token signed by another key under the same kid', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    await expectUnauthorized(await call(url, sign({ sub: 'alice', scope: 'admin' }, {}, other)), NOT_VALID);
  });

  it('refuses an HS256 token signed with the public key as a secret (algorithm confusion)', async () => {
    const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
    // Valid in every other way (expiry included), so only the algorithm check can refuse it.
    const token = jwt.sign({ exp: soon(), sub: 'alice', scope: 'admin' }, pem, {
      algorithm: 'HS256',
      keyid: KID,
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    await expectUnauthorized(await call(url, token), NOT_VALID);
  });

  it('refuses an HS256 token signed with some secret', async () => {
    const token = jwt.sign({ exp: soon(), sub: 'alice', scope: 'admin' }, 'some-secret', {
      algorithm: 'HS256',
      keyid: KID,
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    await expectUnauthorized(await call(url, token), NOT_VALID);
  });

  it('refuses an alg:none token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = `${b64url({ alg: 'none', typ: 'JWT', kid: KID })}.${b64url({
      sub: 'alice',
      scope: 'admin',
      iss: ISSUER,
      aud: AUDIENCE,
      iat: now,
      exp: now + 300,
    })}.`;
    await expectUnauthorized(await call(url, token), NOT_VALID);
  });

  it('forbids a token without the admin scope', async () => {
    const res = await call(url, sign({ sub: 'alice', scope: 'read' }));
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ status: 403, title: 'Forbidden' });
  });

  it('forbids a token with no scope at all', async () => {
    expect((await call(url, sign({ sub: 'alice' }))).status).toBe(403);
  });

  it('does not take a scope that merely contains "admin"', async () => {
    expect((await call(url, sign({ sub: 'alice', scope: 'administrator superadmin' }))).status).toBe(403);
  });

  it('refuses a token without sub', async () => {
    await expectUnauthorized(await call(url, sign({ scope: 'admin' })));
  });

  it('refuses a token without expiry', async () => {
    const token = jwt.sign({ sub: 'alice', scope: 'admin' }, privateKey, {
      algorithm: 'RS256',
      keyid: KID,
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    await expectUnauthorized(await call(url, token));
  });

  it('finds admin in scp even when scope lists others', async () => {
    expect((await call(url, sign({ sub: 'erin', scope: 'read', scp: ['admin'] }))).status).toBe(200);
  });

  it('answers 503 naming JWKS when the key set cannot be fetched (a key the set lacks stays a 401: above)', async () => {
    // A service that has not fetched the keys yet, its JWKS endpoint gone.
    const gone = http.createServer();
    const goneUri = `${await listen(gone)}/.well-known/jwks.json`;
    await close(gone);
    const cold = await startApp({ jwksUri: goneUri, issuer: ISSUER, audience: AUDIENCE, maxAgeS: 3600 });
    try {
      const res = await call(cold.url, sign({ sub: 'alice', scope: 'admin' }));
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(await res.json()).toMatchObject({ status: 503, dependency: 'JWKS' });
      // Past jwks-rsa's rate limit (10 fetches a minute, the failed ones counted) too.
      for (let i = 0; i < 12; i++) {
        expect((await call(cold.url, sign({ sub: 'alice', scope: 'admin' }))).status).toBe(503);
      }
    } finally {
      await close(cold.server);
    }
  });
  it('answers 503 naming JWKS when the key set endpoint takes a connection and never answers', async () => {
    // jwks-rsa's own default would hold the request 30 s; the service gives up after 5.
    const silent = http.createServer(() => undefined);
    const silentUri = `${await listen(silent)}/.well-known/jwks.json`;
    const cold = await startApp({ jwksUri: silentUri, issuer: ISSUER, audience: AUDIENCE, maxAgeS: 3600 });
    try {
      const started = Date.now();
      const res = await fetch(`${cold.url}/whoami`, {
        headers: { authorization: `Bearer ${sign({ sub: 'alice', scope: 'admin' })}` },
        signal: AbortSignal.timeout(12_000),
      });
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: 503, dependency: 'JWKS' });
      // It waited for the key set (a refused connection is a 503 at once), and not for long.
      expect(Date.now() - started).toBeGreaterThanOrEqual(4500);
    } finally {
      silent.closeAllConnections();
      await Promise.all([close(silent), close(cold.server)]);
    }
  }, 15_000);
});

describe('admin auth with a shared secret', () => {
  const SECRET = 'shared-test-secret';
  let app: http.Server | undefined;
  let url: string;

  beforeAll(async () => {
    const started = await startApp({ secret: SECRET, maxAgeS: 3600 });
    app = started.server;
    url = started.url;
  });

  afterAll(async () => {
    await close(app);
  });

  it('accepts an HS256 admin token', async () => {
    const res = await call(
      url,
      jwt.sign({ exp: soon(), sub: 'alice', scope: 'admin' }, SECRET, { algorithm: 'HS256' }),
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ actor: 'alice' });
  });

  it('refuses a token signed with another secret', async () => {
    await expectUnauthorized(
      await call(url, jwt.sign({ exp: soon(), sub: 'alice', scope: 'admin' }, 'wrong-secret', { algorithm: 'HS256' })),
    );
  });

  it('refuses a token issued longer ago than the maximum age, whatever its expiry', async () => {
    const twoHoursAgo = Math.floor(Date.now() / 1000) - 7200;
    const old = jwt.sign({ iat: twoHoursAgo, exp: soon(), sub: 'alice', scope: 'admin' }, SECRET, {
      algorithm: 'HS256',
    });
    await expectUnauthorized(await call(url, old));
  });

  describe('a token accepted once (its check reused)', () => {
    // Only the clock is faked: the servers and fetch keep their real timers.
    beforeEach(() => {
      jest.useFakeTimers({
        doNotFake: [
          'nextTick',
          'setImmediate',
          'clearImmediate',
          'setTimeout',
          'clearTimeout',
          'setInterval',
          'clearInterval',
          'queueMicrotask',
          'hrtime',
          'performance',
        ],
      });
    });
    afterEach(() => jest.useRealTimers());

    it('is refused once it expires', async () => {
      const token = jwt.sign({ exp: Math.floor(Date.now() / 1000) + 30, sub: 'alice', scope: 'admin' }, SECRET, {
        algorithm: 'HS256',
      });
      expect((await call(url, token)).status).toBe(200);
      jest.setSystemTime(Date.now() + 31_000);
      await expectUnauthorized(await call(url, token));
    });

    it('is refused once its maximum age passes, whatever its expiry', async () => {
      const iat = Math.floor(Date.now() / 1000) - 3590;
      const token = jwt.sign({ iat, exp: soon() + 3600, sub: 'alice', scope: 'admin' }, SECRET, { algorithm: 'HS256' });
      expect((await call(url, token)).status).toBe(200);
      jest.setSystemTime(Date.now() + 11_000);
      await expectUnauthorized(await call(url, token));
    });
  });

  it('refuses an HS384 token signed with the right secret (only HS256 is allowed)', async () => {
    await expectUnauthorized(
      await call(url, jwt.sign({ exp: soon(), sub: 'alice', scope: 'admin' }, SECRET, { algorithm: 'HS384' })),
      NOT_VALID,
    );
  });

  it('refuses an alg:none token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'alice', scope: 'admin', iat: now, exp: now + 300 })}.`;
    await expectUnauthorized(await call(url, token), NOT_VALID);
  });

  it('refuses an alg:none token carrying the HMAC of the secret anyway', async () => {
    const valid = jwt.sign({ exp: soon(), sub: 'alice', scope: 'admin' }, SECRET, { algorithm: 'HS256' });
    const [, payload, signature] = valid.split('.');
    await expectUnauthorized(
      await call(url, `${b64url({ alg: 'none', typ: 'JWT' })}.${payload}.${signature}`),
      NOT_VALID,
    );
  });
});
