import type { Client } from '@temporalio/client';
import type { NatsConnection } from 'nats';
import { createPool, type Db } from './clients/postgres';
import { connectNats, ensureStream } from './clients/nats';
import { createRedis, type Redis } from './clients/redis';
import { createTemporalClient } from './clients/temporal';
import { createKvStore, type KvStore } from './clients/vault';
import type { Config } from './config';
import { OutboxRelay } from './events/outbox';
import type { Logger } from './logger';

/** The clients of the five outside systems, opened once per process and shared. */
export interface Resources {
  db: Db;
  redis: Redis;
  nats: NatsConnection;
  kv: KvStore;
  temporal: Client;
  relay: OutboxRelay;
  close(): Promise<void>;
}

export async function openResources(config: Config, log: Logger): Promise<Resources> {
  const db = createPool(config.postgres, log);
  const redis = createRedis(config.redis);
  redis.on('error', (err: Error) => log.warn({ err: err.message }, 'Redis connection error'));
  const nats = await connectNats(config.nats);
  for (const warning of await ensureStream(nats, config.nats.stream)) {
    log.error({ stream: config.nats.stream }, `event stream misconfigured: ${warning}`);
  }
  const kv = await createKvStore(config.vault, log);
  const temporal = await createTemporalClient(config.temporal);
  // The relay's own few connections (LISTEN, the flush holding the lock, waiting flushes): under a
  // burst of requests it must not queue behind them for the shared pool. Opened only when used.
  const relayDb = createPool({ ...config.postgres, poolMax: 4 }, log);
  const relay = new OutboxRelay(relayDb, nats, log, {
    stream: config.nats.stream,
    alertAgeS: config.nats.outboxAlertAgeS,
  });

  return {
    db,
    redis,
    nats,
    kv,
    temporal,
    relay,
    async close() {
      await relay.stop();
      kv.close();
      await Promise.allSettled([nats.drain(), temporal.connection.close(), db.end(), relayDb.end(), redis.quit()]);
    },
  };
}
