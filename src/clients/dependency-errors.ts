import { ServiceError as TemporalServiceError } from '@temporalio/client';
import { DatabaseError } from 'pg';

/**
 * Which dependency an error says is down or too slow, so that the API answers a 503 naming it
 * (with Retry-After) instead of a 500. Only failures of the dependency itself count: a refused
 * statement (a constraint, bad input) is not an outage.
 */

export type Dependency = 'PostgreSQL' | 'Redis' | 'NATS' | 'Temporal' | 'Vault';

export interface DependencyFailure {
  dependency: Dependency;
  detail: string;
  /** Seconds a client should wait before retrying. */
  retryAfterS: number;
}

/** node-postgres's own messages for a connection that could not be made or was lost. */
const PG_CONNECTION_MESSAGES = [
  'timeout exceeded when trying to connect',
  'Connection terminated',
  'Client has encountered a connection error and is not queryable',
];

/** Redis's replies that say the server cannot serve now, not that the command was wrong. */
const REDIS_OUTAGE_REPLIES = /^(LOADING|BUSY|READONLY|OOM|MISCONF|MASTERDOWN|TRYAGAIN|CLUSTERDOWN) /;

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE']);

export function dependencyFailure(err: unknown): DependencyFailure | undefined {
  if (err instanceof DatabaseError) {
    const code = err.code ?? '';
    if (code === '57014')
      return {
        dependency: 'PostgreSQL',
        detail: 'PostgreSQL did not finish in time (statement timeout).',
        retryAfterS: 2,
      };
    if (code === '55P03')
      return {
        dependency: 'PostgreSQL',
        detail: 'PostgreSQL is busy with a concurrent change (lock timeout).',
        retryAfterS: 1,
      };
    // What is left of inTransaction's retries when concurrent changes kept winning.
    if (code === '40001')
      return {
        dependency: 'PostgreSQL',
        detail: 'PostgreSQL is busy with concurrent changes of the same row.',
        retryAfterS: 1,
      };
    // Connection exceptions, insufficient resources, operator intervention (shutdown, recovery),
    // a read-only standby (a failover, DNS on the wrong host), system and internal errors.
    if (/^(08|53|57|58|XX)/.test(code) || code === '25006')
      return { dependency: 'PostgreSQL', detail: 'PostgreSQL is unavailable.', retryAfterS: 5 };
    return undefined;
  }
  // Shapes, not classes: errors of Node's own modules may come from another realm (a test VM).
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { name?: unknown; message?: unknown; dependency?: unknown };
  const message = typeof e.message === 'string' ? e.message : '';
  if (PG_CONNECTION_MESSAGES.some((m) => message.startsWith(m)) || e.dependency === 'PostgreSQL') {
    return { dependency: 'PostgreSQL', detail: 'PostgreSQL is unavailable.', retryAfterS: 5 };
  }
  // ioredis: a command refused while the connection is down, given up after its retries, cut
  // off with its connection (a pipeline or MULTI in flight), or out of its time; Redis itself
  // loading its data, busy with a script, a read-only replica, out of memory or of its disk.
  if (
    e.name === 'MaxRetriesPerRequestError' ||
    message === 'Connection is closed.' ||
    message === 'Command timed out' ||
    (e.name === 'AbortError' && message.startsWith('Command aborted')) ||
    (e.name === 'ReplyError' && REDIS_OUTAGE_REPLIES.test(message))
  ) {
    return { dependency: 'Redis', detail: 'Redis is unavailable.', retryAfterS: 5 };
  }
  // A Temporal RPC that failed or ran out of its deadline (gRPC UNAVAILABLE, DEADLINE_EXCEEDED).
  // By class: the services' own ServiceError shares the name.
  const grpc = (err as { code?: unknown; metadata?: unknown }).code;
  if (
    err instanceof TemporalServiceError ||
    (typeof grpc === 'number' && (grpc === 4 || grpc === 14) && 'metadata' in err)
  ) {
    return { dependency: 'Temporal', detail: 'Temporal is unavailable or did not answer in time.', retryAfterS: 5 };
  }
  // A namespace the Temporal server does not know (a development server restarted in memory).
  if (e.name === 'NamespaceNotFoundError') {
    return { dependency: 'Temporal', detail: 'Temporal does not know its namespace.', retryAfterS: 5 };
  }
  if (e.name === 'NatsError') return { dependency: 'NATS', detail: 'NATS is unavailable.', retryAfterS: 5 };
  // src/clients/vault.ts's VaultError: no status is a network failure or its timeout; 5xx is a
  // sealed or failing Vault; 429 is its rate limit. A 4xx refusal is an answer, not an outage.
  const status = (err as { status?: unknown }).status;
  if (
    e.name === 'VaultError' &&
    (status === undefined || status === 429 || (typeof status === 'number' && status >= 500))
  ) {
    return { dependency: 'Vault', detail: 'Vault is unavailable.', retryAfterS: 5 };
  }
  return undefined;
}

/** A pool connect that failed on the network names PostgreSQL (a bare ECONNREFUSED names nothing). */
export function tagPostgresError(err: unknown): unknown {
  if (typeof err !== 'object' || err === null) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) Object.assign(err, { dependency: 'PostgreSQL' });
  return err;
}
