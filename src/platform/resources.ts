import type { Client } from '@temporalio/client';
import type { NatsConnection } from 'nats';
import { connectNats, ensureStream } from '../clients/nats';
import { createPool, type Db } from '../clients/postgres';
import { createRedis, type Redis } from '../clients/redis';
import { createTemporalClient } from '../clients/temporal';
import { createKvStore, type KvStore } from '../clients/vault';
import { OutboxRelay } from '../events/outbox';
import type { Config } from './config';
import type { Logger } from './logger';
import { createReadinessChecks, type ReadinessChecks } from './readiness';

/** The clients every process opens once and shares: PostgreSQL, Redis, NATS, Temporal. */
export interface Clients {
  db: Db;
  redis: Redis;
  nats: NatsConnection;
  temporal: Client;
  /** One bounded check per client, for /readyz. */
  checks: ReadinessChecks;
  close(): Promise<void>;
}

/** The service process's clients: those, plus Vault and the outbox relay. */
export interface Resources extends Clients {
  kv: KvStore;
  relay: OutboxRelay;
}

/** Opens the four shared clients, creating the event stream if it is missing (every process publishes). */
export async function openClients(config: Config, log: Logger, name?: string): Promise<Clients> {
  const db = createPool(config.postgres, log);
  const redis = createRedis(config.redis);
  redis.on('error', (err: Error) => log.warn({ err: err.message }, 'Redis connection error'));
  const nats = await connectNats(config.nats, name);
  for (const warning of await ensureStream(nats, config.nats.stream)) {
    log.error({ stream: config.nats.stream }, `event stream misconfigured: ${warning}`);
  }
  const temporal = await createTemporalClient(config.temporal);
  return {
    db,
    redis,
    nats,
    temporal,
    checks: createReadinessChecks({ db, redis, nats, temporal }),
    async close() {
      await Promise.allSettled([nats.drain(), temporal.connection.close(), db.end(), redis.quit()]);
    },
  };
}

export async function openResources(config: Config, log: Logger): Promise<Resources> {
  const clients = await openClients(config, log);
  const kv = await createKvStore(config.vault, log);
  // The relay's own few connections (LISTEN, the flush holding the lock, waiting flushes): under a
  // burst of requests it must not queue behind them for the shared pool. Opened only when used.
  // Its waits are by design (one relay holds the session lock while NATS is slow): no lock or
  // statement timeout there.
  const relayDb = createPool({ ...config.postgres, poolMax: 4, lockTimeoutMs: 0, statementTimeoutMs: 0 }, log);
  const relay = new OutboxRelay(relayDb, clients.nats, log, {
    stream: config.nats.stream,
    alertAgeS: config.nats.outboxAlertAgeS,
  });
  return {
    ...clients,
    kv,
    relay,
    checks: createReadinessChecks({ ...clients, kv }),
    async close() {
      await relay.stop();
      kv.close();
      await Promise.allSettled([clients.close(), relayDb.end()]);
    },
  };
}
