import path from 'node:path';
import { ConfigError, loadConfig } from '../src/platform/config';

/**
 * loadConfig as a pure function of the environment it is given: the defaults fit the local stack,
 * and every bad setting fails start-up with a ConfigError that names the variable to fix.
 */

/** The error loadConfig throws for `env`; fails the test if it throws none. */
function configErrorOf(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

/** A production environment complete apart from what a test leaves out. */
const production: NodeJS.ProcessEnv = {
  NODE_ENV: 'production',
  VAULT_TOKEN: 'prod-token',
  JWT_JWKS_URI: 'https://idp.example.com/.well-known/jwks.json',
  JWT_ISSUER: 'https://idp.example.com/',
  JWT_AUDIENCE: 'operator-management',
  IDEMPOTENCY_HMAC_KEY: 'a-production-idempotency-key-of-32-bytes-or-more',
  INTERNAL_TLS_CERT: '/etc/tls/tls.crt',
  INTERNAL_TLS_KEY: '/etc/tls/tls.key',
  INTERNAL_TLS_CA: '/etc/tls/ca.crt',
  INTERNAL_ALLOWED_CLIENTS: 'smpp-connector',
};

/** `env` without the named variables. */
function without(env: NodeJS.ProcessEnv, ...names: string[]): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !names.includes(name)));
}

describe('loadConfig', () => {
  describe('defaults', () => {
    it('fit the local stack', () => {
      const config = loadConfig({});
      expect(config.env).toBe('development');
      expect(config.roles).toEqual(['api', 'worker']);
      expect(config.http).toMatchObject({ host: '127.0.0.1', adminPort: 8080, internalPort: 8443, opsPort: 9090 });
      expect(config.postgres.url).toBe('postgres://postgres@127.0.0.1:5432/operator_mgmt');
      expect(config.redis.url).toBe('redis://127.0.0.1:6379');
      expect(config.nats.servers).toEqual(['nats://127.0.0.1:4222']);
      expect(config.temporal).toMatchObject({
        address: '127.0.0.1:7233',
        namespace: 'default',
        taskQueue: 'operator-management',
        uiUrl: 'http://127.0.0.1:8233',
      });
      expect(config.vault.addr).toBe('http://127.0.0.1:8200');
      expect(config.vault.auth).toEqual({ kind: 'token', token: 'dev-root-token' });
      expect(config.internalTls.enabled).toBe(true);
    });

    it('give a dev JWT shared secret only for local use', () => {
      expect(loadConfig({}).jwt.secret).toEqual(expect.any(String));
      expect(loadConfig({}).jwt.jwksUri).toBeUndefined();
    });

    it('allow the SMPP connector and use the stack certificates in dev mode', () => {
      const { internalTls } = loadConfig({});
      const certs = path.resolve(__dirname, '..', '.stack', 'certs');
      expect(internalTls.allowedClients).toEqual(['smpp-connector']);
      expect(internalTls.certPath).toBe(path.join(certs, 'server.crt'));
      expect(internalTls.keyPath).toBe(path.join(certs, 'server.key'));
      expect(internalTls.caPath).toBe(path.join(certs, 'ca.crt'));
    });
  });

  describe('overrides', () => {
    it('PROCESS_ROLES=worker runs the worker only', () => {
      expect(loadConfig({ PROCESS_ROLES: 'worker' }).roles).toEqual(['worker']);
    });

    it('PROCESS_ROLES is a trimmed comma-separated list', () => {
      expect(loadConfig({ PROCESS_ROLES: ' api , worker ' }).roles).toEqual(['api', 'worker']);
    });

    it('PROCESS_ROLES refuses health: health ingestion is its own process (src/health-main.ts)', () => {
      expect(() => loadConfig({ PROCESS_ROLES: 'api,health' })).toThrow(/PROCESS_ROLES/);
    });

    it('ports are numbers', () => {
      expect(loadConfig({ ADMIN_PORT: '3000' }).http.adminPort).toBe(3000);
    });

    it('VAULT_AUTH=kubernetes with a role uses Kubernetes auth', () => {
      expect(loadConfig({ VAULT_AUTH: 'kubernetes', VAULT_K8S_ROLE: 'omt' }).vault.auth).toEqual({
        kind: 'kubernetes',
        role: 'omt',
        jwtPath: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      });
    });

    it('explicit INTERNAL_ALLOWED_CLIENTS replace the dev default', () => {
      expect(loadConfig({ INTERNAL_ALLOWED_CLIENTS: 'a, b' }).internalTls.allowedClients).toEqual(['a', 'b']);
    });
  });

  describe('bad values throw a ConfigError naming the variable', () => {
    it.each([
      ['ADMIN_PORT', { ADMIN_PORT: '70000' }],
      ['ADMIN_PORT', { ADMIN_PORT: 'abc' }],
      ['ADMIN_PORT', { ADMIN_PORT: '0' }],
      ['DATABASE_URL', { DATABASE_URL: 'not a url' }],
      ['PROCESS_ROLES', { PROCESS_ROLES: 'api,bogus' }],
      ['PROCESS_ROLES', { PROCESS_ROLES: '' }],
      ['NODE_ENV', { NODE_ENV: 'staging' }],
      ['INTERNAL_TLS', { INTERNAL_TLS: 'yes' }],
      ['NATS_STREAM', { NATS_STREAM: 'has space' }],
      ['VAULT_K8S_ROLE', { VAULT_AUTH: 'kubernetes' }],
    ])('%s in %j', (name, env) => {
      const err = configErrorOf(env);
      expect(err.message).toContain(name);
      expect(err.problems.some((p) => new RegExp(`^${name}[.:]`).test(p))).toBe(true);
    });
  });

  describe('production', () => {
    it('accepts a complete environment', () => {
      const config = loadConfig(production);
      expect(config.env).toBe('production');
      expect(config.vault.auth).toEqual({ kind: 'token', token: 'prod-token' });
      expect(config.jwt).toEqual({
        secret: undefined,
        jwksUri: 'https://idp.example.com/.well-known/jwks.json',
        issuer: 'https://idp.example.com/',
        audience: 'operator-management',
        maxAgeS: 3600,
      });
      expect(config.internalTls).toEqual({
        enabled: true,
        certPath: '/etc/tls/tls.crt',
        keyPath: '/etc/tls/tls.key',
        caPath: '/etc/tls/ca.crt',
        allowedClients: ['smpp-connector'],
      });
    });

    it('requires JWT settings', () => {
      const env = without(production, 'JWT_JWKS_URI');
      expect(configErrorOf(env).message).toContain('JWT_JWKS_URI');
    });

    it('accepts a shared JWT secret instead of a JWKS URL', () => {
      const env = without(production, 'JWT_JWKS_URI');
      const secret = 'a-production-secret-of-32-bytes!';
      expect(loadConfig({ ...env, JWT_SECRET: secret }).jwt.secret).toBe(secret);
    });

    it('requires each INTERNAL_TLS_* path', () => {
      const env = without(production, 'INTERNAL_TLS_CERT', 'INTERNAL_TLS_KEY', 'INTERNAL_TLS_CA');
      const err = configErrorOf(env);
      for (const name of ['INTERNAL_TLS_CERT', 'INTERNAL_TLS_KEY', 'INTERNAL_TLS_CA']) {
        expect(err.message).toContain(name);
      }
    });

    it('requires VAULT_TOKEN for token auth (no dev token)', () => {
      const env = without(production, 'VAULT_TOKEN');
      expect(configErrorOf(env).message).toContain('VAULT_TOKEN');
    });

    it.each([
      ['INTERNAL_TLS=false', { INTERNAL_TLS: 'false' }, 'INTERNAL_TLS'],
      ['a JWT secret shorter than 32 bytes', { JWT_SECRET: 'short-secret' }, 'JWT_SECRET'],
      ['no JWT_ISSUER', { JWT_ISSUER: '' }, 'JWT_ISSUER'],
      ['no JWT_AUDIENCE', { JWT_AUDIENCE: '' }, 'JWT_AUDIENCE'],
      ['no IDEMPOTENCY_HMAC_KEY', { IDEMPOTENCY_HMAC_KEY: '' }, 'IDEMPOTENCY_HMAC_KEY'],
      ['a short IDEMPOTENCY_HMAC_KEY', { IDEMPOTENCY_HMAC_KEY: 'short' }, 'IDEMPOTENCY_HMAC_KEY'],
    ])('refuses %s, naming the variable', (_what, change, name) => {
      expect(configErrorOf({ ...production, ...change }).message).toContain(name);
    });

    it('accepts a shared JWT secret of 32 bytes and a maximum token age', () => {
      const config = loadConfig({
        ...without(production, 'JWT_JWKS_URI'),
        JWT_SECRET: 'x'.repeat(32),
        JWT_MAX_AGE_S: '600',
      });
      expect(config.jwt).toMatchObject({ secret: 'x'.repeat(32), maxAgeS: 600 });
    });

    it('reports every missing setting at once', () => {
      const err = configErrorOf({ NODE_ENV: 'production' });
      for (const name of ['VAULT_TOKEN', 'JWT_JWKS_URI', 'INTERNAL_TLS_CERT', 'INTERNAL_TLS_KEY', 'INTERNAL_TLS_CA']) {
        expect(err.message).toContain(name);
      }
    });

    it('leaks no dev defaults', () => {
      const env = without(production, 'INTERNAL_ALLOWED_CLIENTS');
      const config = loadConfig(env);
      expect(config.jwt.secret).toBeUndefined();
      expect(config.idempotencyHmacKey).toBe(production.IDEMPOTENCY_HMAC_KEY);
      expect(config.internalTls.allowedClients).toEqual([]);
      expect(config.internalTls.certPath).toBe('/etc/tls/tls.crt');
      // No dev certificates to fall back on: without its own, production does not start.
      const bare = configErrorOf({ ...env, INTERNAL_TLS_CERT: '', INTERNAL_TLS_KEY: '', INTERNAL_TLS_CA: '' });
      expect(bare.message).toContain('INTERNAL_TLS_CERT');
    });

    it('has no dev JWT secret when a JWKS URL is set, in any environment', () => {
      expect(loadConfig(production).jwt.secret).toBeUndefined();
      expect(loadConfig({ JWT_JWKS_URI: 'https://idp.example.com/jwks' }).jwt.secret).toBeUndefined();
    });
  });
});
