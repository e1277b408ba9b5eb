import { createSecretKey } from 'node:crypto';
import jwt, { type JwtPayload } from 'jsonwebtoken';
import { JwksClient } from 'jwks-rsa';
import type { Middleware } from 'koa';
import type { Config } from '../../platform/config';
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

function unauthorized(detail: string): HttpProblem {
  return new HttpProblem(401, 'Unauthorized', detail, {}, { 'WWW-Authenticate': 'Bearer realm="operator-management"' });
}

/** Scopes from both `scope` (space-separated string) and `scp` (string or array), combined. */
function scopesOf(claims: JwtPayload): string[] {
  return [claims.scope, claims.scp].flatMap((raw: unknown) => {
    if (typeof raw === 'string') return raw.split(' ');
    if (Array.isArray(raw)) return raw.filter((s): s is string => typeof s === 'string');
    return [];
  });
}

export function createAdminAuth(config: Config['jwt']): Middleware<AuthState> {
  const jwks = config.jwksUri ? new JwksClient({ jwksUri: config.jwksUri, cache: true, rateLimit: true }) : undefined;
  const key: jwt.Secret | jwt.GetPublicKeyOrSecret = jwks
    ? (header, done) => {
        jwks.getSigningKey(header.kid).then(
          (k) => done(null, k.getPublicKey()),
          (err: Error) => done(err),
        );
      }
    : // A KeyObject made once: given a string, jsonwebtoken tries to parse it as a PEM key on every request.
      createSecretKey(Buffer.from(config.secret ?? ''));
  const options: jwt.VerifyOptions = {
    algorithms: jwks ? ['RS256', 'ES256'] : ['HS256'],
    issuer: config.issuer,
    audience: config.audience,
    maxAge: `${config.maxAgeS}s`,
  };

  const verify = (token: string) =>
    new Promise<JwtPayload>((resolve, reject) => {
      jwt.verify(token, key, options, (err, decoded) => {
        if (err || !decoded || typeof decoded === 'string') reject(err ?? new Error('malformed token'));
        else resolve(decoded);
      });
    });

  return async (ctx, next) => {
    const header = ctx.get('Authorization');
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match?.[1]) throw unauthorized('A Bearer token is required.');
    let claims: JwtPayload;
    try {
      claims = await verify(match[1]);
    } catch (err) {
      throw unauthorized(err instanceof jwt.TokenExpiredError ? 'The token has expired.' : 'The token is not valid.');
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
