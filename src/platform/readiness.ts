import type { Pool } from 'pg';
import type { Redis } from 'ioredis';
import type { NatsConnection } from 'nats';
import type { Client } from '@temporalio/client';
import type { KvStore } from '../clients/vault';

/**
 * Readiness: can this process do its work right now? One check per dependency, each bounded by a
 * short timeout so a hung dependency makes /readyz answer "down" quickly instead of hanging the
 * probe. A failed check reports a short, secret-free reason (never a token or credentialed URL).
 */

export type ReadinessChecks = Record<string, () => Promise<void>>;

/**
 * What each role cannot serve without: only these make /readyz answer 503. Any other check that
 * fails is reported (`degraded`) while the process stays ready, because its other answers still
 * work: with Vault down the api role still serves config reads and writes and answers a
 * credential read with a 503 naming Vault; with Temporal down only workflow starts fail; with
 * Redis or NATS down only health reads fail and events wait in the outbox. `process` fails once
 * a drain (SIGTERM) begins.
 */
export const REQUIRED_BY_ROLE = {
  api: ['postgres', 'process'],
  worker: ['postgres', 'temporal', 'process'],
  health: ['nats', 'redis', 'postgres', 'consumer', 'process'],
} as const satisfies Record<string, readonly string[]>;

export type ReadinessRole = keyof typeof REQUIRED_BY_ROLE;

export function requiredChecks(roles: readonly ReadinessRole[]): ReadonlySet<string> {
  return new Set(roles.flatMap((role) => REQUIRED_BY_ROLE[role]));
}

export interface ReadinessDeps {
  db: Pool;
  redis: Redis;
  nats: NatsConnection;
  /** Absent in a process that never talks to Vault (health ingestion). */
  kv?: KvStore;
  temporal: Client;
}

export const DEFAULT_CHECK_TIMEOUT_MS = 2_000;

export class CheckTimeoutError extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms}ms`);
    this.name = 'CheckTimeoutError';
  }
}

/** Settles with the promise, or rejects with CheckTimeoutError after ms; the timer never outlives it. */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CheckTimeoutError(ms)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function createReadinessChecks(deps: ReadinessDeps, options: { timeoutMs?: number } = {}): ReadinessChecks {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const bounded = (check: () => Promise<unknown>) => async (): Promise<void> => {
    await withTimeout(check(), timeoutMs);
  };

  return {
    postgres: bounded(() => deps.db.query('SELECT 1')),
    redis: bounded(async () => {
      const answer = await deps.redis.ping();
      if (answer !== 'PONG') throw new Error(`unexpected PING answer`);
    }),
    nats: bounded(async () => {
      const nc = deps.nats;
      if (nc.isClosed()) throw new Error('connection closed');
      await nc.flush();
      const jsm = await nc.jetstreamManager({ checkAPI: false, timeout: timeoutMs });
      await jsm.getAccountInfo();
    }),
    ...(deps.kv ? { vault: bounded(() => (deps.kv as KvStore).ping()) } : {}),
    temporal: bounded(() => deps.temporal.workflowService.getSystemInfo({})),
  };
}

export interface ReadinessReport {
  /** Every required check is up (every check, when none are named required). */
  ok: boolean;
  /** Checks that failed but are not required: the process serves, some answers are 503s. */
  degraded: string[];
  /** 'up', or a short reason why the dependency is down. */
  checks: Record<string, 'up' | string>;
}

const MAX_REASON_LENGTH = 200;

/** A short reason for a failed check, with anything credential-like removed. */
export function describeFailure(err: unknown): string {
  let reason: string;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    // AggregateError (e.g. ECONNREFUSED on every address) often has an empty message.
    reason = err.message || (typeof code === 'string' ? code : '') || err.name;
  } else {
    reason = typeof err === 'string' ? err : 'check failed';
  }
  reason = reason
    // user:password@ in any URL
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1***@')
    // token-ish key/value pairs (token=..., "password":"...", authorization: ...)
    .replace(/\b(token|password|secret|authorization)(["']?\s*[:=]\s*["']?)[^\s"',;]+/gi, '$1$2***')
    .replace(/\s+/g, ' ')
    .trim();
  if (reason.length > MAX_REASON_LENGTH) reason = `${reason.slice(0, MAX_REASON_LENGTH - 1)}…`;
  return reason || 'check failed';
}

/**
 * Runs every check in parallel. Each is additionally bounded by guardMs, so a check built
 * elsewhere without its own timeout still cannot hang the probe.
 */
export async function checkReadiness(
  checks: ReadinessChecks,
  options: { guardMs?: number; required?: ReadonlySet<string> } = {},
): Promise<ReadinessReport> {
  const guardMs = options.guardMs ?? DEFAULT_CHECK_TIMEOUT_MS + 500;
  const names = Object.keys(checks);
  const results = await Promise.allSettled(
    names.map((name) =>
      withTimeout(
        Promise.resolve().then(() => checks[name]!()),
        guardMs,
      ),
    ),
  );
  const report: Record<string, string> = {};
  const degraded: string[] = [];
  let ok = true;
  results.forEach((result, i) => {
    const name = names[i]!;
    if (result.status === 'fulfilled') {
      report[name] = 'up';
      return;
    }
    report[name] = describeFailure(result.reason);
    if (!options.required || options.required.has(name)) ok = false;
    else degraded.push(name);
  });
  return { ok, degraded, checks: report };
}
