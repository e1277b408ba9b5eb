import path from 'node:path';
import { z } from 'zod';
import type { HttpLimits } from './http-limits';

/**
 * Every setting of every process, read from the environment once and validated at start-up.
 * Defaults fit the local stack that `npm run stack:up` brings up.
 */

const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().positive();
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const list = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

// Health ingestion is a process of its own (src/health-main.ts), not a role of src/main.ts.
const roles = ['api', 'worker'] as const;
export type ProcessRole = (typeof roles)[number];

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PROCESS_ROLES: list.pipe(z.array(z.enum(roles)).min(1)).default(['api', 'worker']),

  ADMIN_PORT: port.default(8080),
  INTERNAL_PORT: port.default(8443),
  OPS_PORT: port.default(9090),
  HEALTH_OPS_PORT: port.default(9091),
  BIND_HOST: z.string().default('127.0.0.1'),

  DATABASE_URL: z.url().default('postgres://postgres@127.0.0.1:5432/operator_mgmt'),
  PG_POOL_MAX: positiveInt.default(10),
  PG_CONNECT_TIMEOUT_MS: positiveInt.default(5_000),
  PG_STATEMENT_TIMEOUT_MS: positiveInt.default(30_000),
  PG_LOCK_TIMEOUT_MS: positiveInt.default(5_000),
  PG_IDLE_IN_TRANSACTION_TIMEOUT_MS: positiveInt.default(60_000),

  REDIS_URL: z.url().default('redis://127.0.0.1:6379'),
  REDIS_COMMAND_TIMEOUT_MS: positiveInt.default(2_000),

  NATS_URL: z.string().default('nats://127.0.0.1:4222'),
  NATS_STREAM: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default('OPERATOR_EVENTS'),

  TEMPORAL_ADDRESS: z.string().default('127.0.0.1:7233'),
  // Every Temporal call the API makes outside a workflow start (those wait ONBOARDING_ACCEPT_TIMEOUT_MS).
  TEMPORAL_CALL_TIMEOUT_MS: positiveInt.default(5_000),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_TASK_QUEUE: z.string().default('operator-management'),
  TEMPORAL_UI_URL: z.url().default('http://127.0.0.1:8233'),
  TEMPORAL_WORKFLOW_BUNDLE: optionalString,
  // The SDK's Prometheus exporter, on loopback (served through OPS_PORT's /metrics); 0: any free port.
  TEMPORAL_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(0),

  VAULT_ADDR: z.url().default('http://127.0.0.1:8200'),
  VAULT_AUTH: z.enum(['token', 'kubernetes']).default('token'),
  VAULT_TOKEN: optionalString,
  VAULT_K8S_ROLE: optionalString,
  VAULT_K8S_JWT_PATH: z.string().default('/var/run/secrets/kubernetes.io/serviceaccount/token'),
  VAULT_KV_MOUNT: z.string().default('secret'),
  VAULT_K8S_MOUNT: z.string().default('kubernetes'),
  VAULT_REQUEST_TIMEOUT_MS: positiveInt.default(5000),
  CREDENTIALS_CACHE_TTL_S: z.coerce.number().int().min(0).max(300).default(30),

  JWT_SECRET: optionalString,
  /** Keys the HMAC of secrets in an idempotency key's request hash; the same on every replica. */
  IDEMPOTENCY_HMAC_KEY: optionalString,
  JWT_JWKS_URI: optionalString.pipe(z.url().optional()),
  JWT_ISSUER: optionalString,
  JWT_AUDIENCE: optionalString,
  /** Tokens older than this (by `iat`) are refused, whatever their `exp`. */
  JWT_MAX_AGE_S: positiveInt.default(3600),

  ONBOARDING_BIND_TIMEOUT_S: positiveInt.default(600),
  DRAIN_TIMEOUT_S: positiveInt.default(900),
  // The health key's lifetime: an instance silent for longer is gone (SPEC 3.4).
  DRAIN_INSTANCE_WINDOW_S: positiveInt.default(60),
  ROTATION_BIND_TIMEOUT_S: positiveInt.default(300),
  // Capped below the 2-minute abandoned-claim limit of src/db/idempotency-keys.ts.
  ONBOARDING_ACCEPT_TIMEOUT_MS: positiveInt.max(60_000).default(15_000),
  // Only a safety net: relays wake on NOTIFY at commit, so a slow poll costs no latency.
  OUTBOX_POLL_MS: positiveInt.default(2000),
  OUTBOX_ALERT_AGE_S: positiveInt.default(60),
  PAGE_SIZE_MAX: positiveInt.default(100),
  PREFIX_IMPORT_MAX_BYTES: positiveInt.default(64 * 1024 * 1024),
  HTTP_HEADERS_TIMEOUT_MS: positiveInt.default(10_000),
  // Long enough for a 64 MiB prefix import over a modest link.
  HTTP_REQUEST_TIMEOUT_MS: positiveInt.default(120_000),
  // Above the longest silent wait of a request (an onboarding's accept timeout, at most 60 s).
  HTTP_IDLE_TIMEOUT_MS: positiveInt.default(90_000),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: positiveInt.default(5_000),
  HTTP_MAX_CONNECTIONS: positiveInt.default(2_000),
  HEALTH_LOG_RETENTION_DAYS: positiveInt.default(30),
  HOUSEKEEPING_INTERVAL_S: positiveInt.default(3600),

  HEALTH_STREAM: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default('CONNECTOR_HEALTH'),
  HEALTH_STREAM_MAX_AGE_S: positiveInt.default(3600),
  HEALTH_CONSUMER: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default('operator-management-health'),
  HEALTH_BATCH_MAX: positiveInt.max(10_000).default(500),
  HEALTH_BATCHES_IN_FLIGHT: positiveInt.max(16).default(2),
  HEALTH_MAX_ACK_PENDING: positiveInt.default(5000),
  HEALTH_RETRY_DELAY_MS: positiveInt.default(1000),
  HEALTH_MAX_DELIVERIES: positiveInt.default(5),
  HEALTH_TARGETS_CACHE_TTL_S: z.coerce.number().int().min(0).max(300).default(30),
  ROUTING_EXPLAIN_CACHE_TTL_S: z.coerce.number().int().min(0).max(300).default(30),

  INTERNAL_TLS: bool.default(true),
  INTERNAL_TLS_CERT: optionalString,
  INTERNAL_TLS_KEY: optionalString,
  INTERNAL_TLS_CA: optionalString,
  INTERNAL_ALLOWED_CLIENTS: list.default([]),
  INTERNAL_TLS_RELOAD_MS: positiveInt.default(30_000),
});

type Env = z.infer<typeof envSchema>;

export interface Config {
  env: Env['NODE_ENV'];
  logLevel: Env['LOG_LEVEL'];
  roles: ProcessRole[];
  http: {
    host: string;
    adminPort: number;
    internalPort: number;
    opsPort: number;
    pageSizeMax: number;
    /** The largest prefix-table entries body (CSV or JSON); 1,000,000 prefixes take about 14 MB. */
    prefixImportMaxBytes: number;
    /** How often the internal listener re-reads its certificate, key and CA files. */
    /** Timeouts and the connection cap of every listener (src/platform/http-limits.ts). */
    limits: HttpLimits;
    internalTlsReloadMs: number;
  };
  postgres: {
    url: string;
    poolMax: number;
    /** Bounded waits (src/clients/postgres.ts): connect, statement, lock, idle transaction. */
    connectTimeoutMs: number;
    statementTimeoutMs: number;
    lockTimeoutMs: number;
    idleInTransactionTimeoutMs: number;
    healthLogRetentionDays: number;
    housekeepingIntervalS: number;
  };
  redis: { url: string; commandTimeoutMs: number };
  nats: {
    servers: string[];
    stream: string;
    /** The safety-net poll; relays wake on NOTIFY at commit. */
    outboxPollMs: number;
    /** Age of the oldest unpublished event that raises an error-level log. */
    outboxAlertAgeS: number;
  };
  health: {
    opsPort: number;
    /** Inbound stream of connector reports (`connector.health.>`), created if missing. */
    stream: string;
    streamMaxAgeS: number;
    /** Durable pull consumer shared by every health process replica. */
    consumer: string;
    batchMax: number;
    /** Batches written at once: one's writes overlap the next one's lookup (newest-wins keeps order moot). */
    batchesInFlight: number;
    maxAckPending: number;
    /** Redelivery delay of a batch whose writes failed (a dependency is down). */
    retryDelayMs: number;
    maxDeliveries: number;
    /** Operators' facts kept in memory between batches, dropped at once by a change's NOTIFY; 0: none. */
    targetsCacheTtlS: number;
  };
  routing: {
    /**
     * How long route explain keeps in memory what it read of the rules (PostgreSQL) and of
     * operators' health (Redis), each dropped at once by a change (NOTIFY; Redis tracking); 0: none.
     */
    explainCacheTtlS: number;
  };
  temporal: {
    address: string;
    /** The deadline of each Temporal call outside a workflow start (a describe, a list, a signal). */
    callTimeoutMs: number;
    namespace: string;
    taskQueue: string;
    uiUrl: string;
    workflowBundlePath?: string;
    /** The SDK's Prometheus exporter's loopback port (0: a free one), read through /metrics. */
    metricsPort: number;
    onboardingBindTimeoutS: number;
    /** How long a drain waits for the connector to report no message in flight. */
    drainTimeoutS: number;
    /** A connector instance that reported within this many seconds is one a drain waits for. */
    drainInstanceWindowS: number;
    /** How long a credential rotation waits for the connector to bind with the new version. */
    rotationBindTimeoutS: number;
    /** How long POST /operators waits for a worker to save the operator before giving up. */
    onboardingAcceptTimeoutMs: number;
  };
  vault: {
    addr: string;
    mount: string;
    /** Per-request timeout: a hung Vault fails a request instead of holding it. */
    requestTimeoutMs?: number;
    /** How long the internal API keeps a read Vault version in memory (0: never). */
    credentialsCacheTtlS?: number;
    /** Path of the Kubernetes auth method (`auth/<path>/login`). */
    kubernetesMount?: string;
    auth: { kind: 'token'; token: string } | { kind: 'kubernetes'; role: string; jwtPath: string };
  };
  idempotencyHmacKey: string;
  jwt: { secret?: string; jwksUri?: string; issuer?: string; audience?: string; maxAgeS: number };
  internalTls: {
    enabled: boolean;
    certPath?: string;
    keyPath?: string;
    caPath?: string;
    allowedClients: string[];
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];

  if (e.VAULT_AUTH === 'token' && !e.VAULT_TOKEN && e.NODE_ENV === 'production') {
    problems.push('VAULT_TOKEN: required when VAULT_AUTH=token');
  }
  if (e.VAULT_AUTH === 'kubernetes' && !e.VAULT_K8S_ROLE) {
    problems.push('VAULT_K8S_ROLE: required when VAULT_AUTH=kubernetes');
  }
  if (e.NODE_ENV === 'production') {
    if (!e.JWT_SECRET && !e.JWT_JWKS_URI) {
      problems.push('JWT_JWKS_URI: required in production (or JWT_SECRET for a shared secret)');
    }
    // A short HS256 secret can be brute-forced from one token.
    if (e.JWT_SECRET && Buffer.byteLength(e.JWT_SECRET) < 32) {
      problems.push('JWT_SECRET: at least 32 bytes in production');
    }
    if (!e.JWT_ISSUER) problems.push('JWT_ISSUER: required in production');
    if (!e.IDEMPOTENCY_HMAC_KEY || Buffer.byteLength(e.IDEMPOTENCY_HMAC_KEY) < 32) {
      problems.push('IDEMPOTENCY_HMAC_KEY: at least 32 bytes in production');
    }
    if (!e.JWT_AUDIENCE) problems.push('JWT_AUDIENCE: required in production');
    // Without TLS the internal listener would serve SMPP passwords to any caller, in plain text.
    if (!e.INTERNAL_TLS)
      problems.push('INTERNAL_TLS: must be true in production (the internal API serves SMPP passwords)');
  }
  if (e.INTERNAL_TLS && e.NODE_ENV === 'production') {
    for (const name of ['INTERNAL_TLS_CERT', 'INTERNAL_TLS_KEY', 'INTERNAL_TLS_CA'] as const) {
      if (!e[name]) problems.push(`${name}: required when INTERNAL_TLS=true`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const devOnly = e.NODE_ENV !== 'production';
  // The stack script makes these for local use (scripts/dev-certs.sh); production mounts its own.
  const devCert = (file: string) =>
    devOnly ? path.resolve(__dirname, '..', '..', '.stack', 'certs', file) : undefined;
  return {
    env: e.NODE_ENV,
    logLevel: e.LOG_LEVEL,
    roles: e.PROCESS_ROLES,
    http: {
      host: e.BIND_HOST,
      adminPort: e.ADMIN_PORT,
      internalPort: e.INTERNAL_PORT,
      opsPort: e.OPS_PORT,
      pageSizeMax: e.PAGE_SIZE_MAX,
      prefixImportMaxBytes: e.PREFIX_IMPORT_MAX_BYTES,
      internalTlsReloadMs: e.INTERNAL_TLS_RELOAD_MS,
      limits: {
        headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
        requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
        idleTimeoutMs: e.HTTP_IDLE_TIMEOUT_MS,
        keepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT_MS,
        maxConnections: e.HTTP_MAX_CONNECTIONS,
      },
    },
    postgres: {
      url: e.DATABASE_URL,
      poolMax: e.PG_POOL_MAX,
      connectTimeoutMs: e.PG_CONNECT_TIMEOUT_MS,
      statementTimeoutMs: e.PG_STATEMENT_TIMEOUT_MS,
      lockTimeoutMs: e.PG_LOCK_TIMEOUT_MS,
      idleInTransactionTimeoutMs: e.PG_IDLE_IN_TRANSACTION_TIMEOUT_MS,
      healthLogRetentionDays: e.HEALTH_LOG_RETENTION_DAYS,
      housekeepingIntervalS: e.HOUSEKEEPING_INTERVAL_S,
    },
    redis: { url: e.REDIS_URL, commandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS },
    nats: {
      servers: e.NATS_URL.split(','),
      stream: e.NATS_STREAM,
      outboxPollMs: e.OUTBOX_POLL_MS,
      outboxAlertAgeS: e.OUTBOX_ALERT_AGE_S,
    },
    health: {
      opsPort: e.HEALTH_OPS_PORT,
      stream: e.HEALTH_STREAM,
      streamMaxAgeS: e.HEALTH_STREAM_MAX_AGE_S,
      consumer: e.HEALTH_CONSUMER,
      batchMax: e.HEALTH_BATCH_MAX,
      batchesInFlight: e.HEALTH_BATCHES_IN_FLIGHT,
      maxAckPending: e.HEALTH_MAX_ACK_PENDING,
      retryDelayMs: e.HEALTH_RETRY_DELAY_MS,
      maxDeliveries: e.HEALTH_MAX_DELIVERIES,
      targetsCacheTtlS: e.HEALTH_TARGETS_CACHE_TTL_S,
    },
    routing: { explainCacheTtlS: e.ROUTING_EXPLAIN_CACHE_TTL_S },
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      callTimeoutMs: e.TEMPORAL_CALL_TIMEOUT_MS,
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      uiUrl: e.TEMPORAL_UI_URL.replace(/\/$/, ''),
      workflowBundlePath: e.TEMPORAL_WORKFLOW_BUNDLE,
      metricsPort: e.TEMPORAL_METRICS_PORT,
      onboardingBindTimeoutS: e.ONBOARDING_BIND_TIMEOUT_S,
      drainTimeoutS: e.DRAIN_TIMEOUT_S,
      drainInstanceWindowS: e.DRAIN_INSTANCE_WINDOW_S,
      rotationBindTimeoutS: e.ROTATION_BIND_TIMEOUT_S,
      onboardingAcceptTimeoutMs: e.ONBOARDING_ACCEPT_TIMEOUT_MS,
    },
    vault: {
      addr: e.VAULT_ADDR,
      mount: e.VAULT_KV_MOUNT,
      requestTimeoutMs: e.VAULT_REQUEST_TIMEOUT_MS,
      credentialsCacheTtlS: e.CREDENTIALS_CACHE_TTL_S,
      kubernetesMount: e.VAULT_K8S_MOUNT,
      auth:
        e.VAULT_AUTH === 'kubernetes'
          ? { kind: 'kubernetes', role: e.VAULT_K8S_ROLE ?? '', jwtPath: e.VAULT_K8S_JWT_PATH }
          : { kind: 'token', token: e.VAULT_TOKEN ?? 'dev-root-token' },
    },
    // The shared secret default exists only so `npm start` works out of the box locally.
    // A fixed local key: replicas and restarts must agree, or a client's retry would be a 422.
    idempotencyHmacKey: e.IDEMPOTENCY_HMAC_KEY ?? 'local-dev-idempotency-hmac-key',
    jwt: {
      secret: e.JWT_SECRET ?? (devOnly && !e.JWT_JWKS_URI ? 'local-dev-jwt-secret' : undefined),
      jwksUri: e.JWT_JWKS_URI,
      issuer: e.JWT_ISSUER,
      maxAgeS: e.JWT_MAX_AGE_S,
      audience: e.JWT_AUDIENCE,
    },
    internalTls: {
      enabled: e.INTERNAL_TLS,
      certPath: e.INTERNAL_TLS_CERT ?? devCert('server.crt'),
      keyPath: e.INTERNAL_TLS_KEY ?? devCert('server.key'),
      caPath: e.INTERNAL_TLS_CA ?? devCert('ca.crt'),
      allowedClients:
        e.INTERNAL_ALLOWED_CLIENTS.length > 0 || !devOnly ? e.INTERNAL_ALLOWED_CLIENTS : ['smpp-connector'],
    },
  };
}
