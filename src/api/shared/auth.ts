import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt, { type JwtPayload } from 'jsonwebtoken';
import { JwksClient } from 'jwks-rsa';
import type { Middleware } from 'koa';
import type { Config } from '../../platform/config';
import type { Logger } from '../../platform/logger';
import { HttpProblem } from './problem';

/**
 * Kong checks the admin JWT at the edge; the service checks it again (signature, expiry, `admin`
 * scope in `scope` or `scp`) so that a misrouted request gains nothing. A shared secret serves
 * local use; a JWKS URL serves production.
 */

export interface AuthState {
  actor: string;
}

const REQUIRED_SCOPE = 'admin';
/** An issuer that does not answer in this time is down (jwks-rsa waits 30 s by default): a 503. */
const JWKS_TIMEOUT_MS = 5_000;

function unauthorized(detail: string): HttpProblem {
  return new HttpProblem(401, 'Unauthorized', detail, {}, { 'WWW-Authenticate': 'Bearer realm="operator-management"' });
}

function jwksUnavailable(): HttpProblem {
  return new HttpProblem(
    503,
    'Service unavailable',
    "The token issuer's signing keys (JWT_JWKS_URI) could not be fetched, so the token could not be checked. Retry.",
    { dependency: 'JWKS' },
    { 'Retry-After': '5' },
  );
}

/** Scopes from both `scope` (space-separated string) and `scp` (string or array), combined. */
function scopesOf(claims: JwtPayload): string[] {
  return [claims.scope, claims.scp].flatMap((raw: unknown) => {
    if (typeof raw === 'string') return raw.split(' ');
    if (Array.isArray(raw)) return raw.filter((s): s is string => typeof s === 'string');
    return [];
  });
}

export function createAdminAuth(config: Config['jwt'], log?: Logger): Middleware<AuthState> {
  const jwks = config.jwksUri
    ? new JwksClient({ jwksUri: config.jwksUri, cache: true, rateLimit: true, timeout: JWKS_TIMEOUT_MS })
    : undefined;
  let lastFetchFailure = 0;
  // A KeyObject made once: given a string, jsonwebtoken tries to parse it as a PEM key on every request.
  const secret = jwks ? undefined : createSecretKey(Buffer.from(config.secret ?? ''));
  const options: jwt.VerifyOptions = {
    algorithms: jwks ? ['RS256', 'ES256'] : ['HS256'],
    issuer: config.issuer,
    audience: config.audience,
    maxAge: `${config.maxAgeS}s`,
  };

  const verify = (token: string) =>
    new Promise<JwtPayload>((resolve, reject) => {
      // The issuer's key set could not be had (its endpoint down or answering badly): the token is
      // not known to be bad, so the answer is a 503 naming it, not a 401. A key the set lacks
      // stays a 401, and so does one asked for too often (jwks-rsa's rate limit: tokens with
      // made-up key ids), unless a fetch failed within the last minute: the limit counts the
      // failed fetches of an outage too.
      let keysUnavailable = false;
      const key: jwt.Secret | jwt.GetPublicKeyOrSecret = jwks
        ? (header, done) => {
            jwks.getSigningKey(header.kid).then(
              (k) => {
                lastFetchFailure = 0;
                done(null, k.getPublicKey());
              },
              (err: Error) => {
                if (err.name === 'JwksRateLimitError') keysUnavailable = Date.now() - lastFetchFailure < 60_000;
                else if (err.name !== 'SigningKeyNotFoundError') {
                  keysUnavailable = true;
                  lastFetchFailure = Date.now();
                  log?.warn({ err: err.message }, 'the JWKS could not be fetched');
                }
                done(err);
              },
            );
          }
        : (secret as KeyObject);
      jwt.verify(token, key, options, (err, decoded) => {
        if (keysUnavailable) reject(jwksUnavailable());
        else if (err || !decoded || typeof decoded === 'string') reject(err ?? new Error('malformed token'));
        else resolve(decoded);
      });
    });
  const verified = new VerifiedTokens(config.maxAgeS);

  return async (ctx, next) => {
    const header = ctx.get('Authorization');
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match?.[1]) throw unauthorized('A Bearer token is required.');
    const token = match[1];
    let claims = verified.get(token);
    if (!claims) {
      try {
        claims = await verify(token);
      } catch (err) {
        if (err instanceof HttpProblem) throw err;
        throw unauthorized(err instanceof jwt.TokenExpiredError ? 'The token has expired.' : 'The token is not valid.');
      }
      verified.add(token, claims);
    }
    // A token without expiry would stay valid forever once leaked.
    if (claims.exp === undefined) throw unauthorized('The token has no expiry.');
    if (!scopesOf(claims).includes(REQUIRED_SCOPE)) {
      throw new HttpProblem(403, 'Forbidden', `The token lacks the "${REQUIRED_SCOPE}" scope.`);
    }
    if (!claims.sub) throw unauthorized('The token has no subject.');
    ctx.state.actor = claims.sub;
    await next();
  };
}

/**
 * Tokens whose signature and claims were checked, by token, each until the earliest of its
 * expiry, the end of its maximum age and a minute from its check: a client sends the same token
 * with every request, and its signature check would otherwise be the largest cost of a read.
 * A token is reused only while each time-bound check would still pass; the claim checks after
 * `verify` (expiry present, scope, subject) are re-run on every request. Bounded in size: the
 * oldest entries go first.
 */
class VerifiedTokens {
  private readonly tokens = new Map<string, { claims: JwtPayload; until: number }>();

  constructor(
    private readonly maxAgeS: number,
    private readonly reuseMs = 60_000,
    private readonly capacity = 10_000,
  ) {}

  get(token: string): JwtPayload | undefined {
    const hit = this.tokens.get(token);
    if (!hit) return undefined;
    if (Date.now() < hit.until) return hit.claims;
    this.tokens.delete(token);
    return undefined;
  }

  add(token: string, claims: JwtPayload): void {
    // No expiry: refused after verify, and never kept.
    if (claims.exp === undefined) return;
    const bounds = [claims.exp * 1000, Date.now() + this.reuseMs];
    if (claims.iat !== undefined) bounds.push((claims.iat + this.maxAgeS) * 1000);
    if (this.tokens.size >= this.capacity) this.tokens.delete(this.tokens.keys().next().value as string);
    this.tokens.set(token, { claims, until: Math.min(...bounds) });
  }
}
