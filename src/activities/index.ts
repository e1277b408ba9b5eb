import type { Db } from '../clients/postgres';
import type { Redis } from '../clients/redis';
import type { KvStore } from '../clients/vault';
import type { OutboxRelay } from '../events/outbox';
import { createNatsActivities } from './nats';
import { createPostgresActivities } from './postgres';
import { createRedisActivities } from './redis';
import { createVaultActivities } from './vault';

export interface ActivityDeps {
  db: Db;
  kv: KvStore;
  redis: Redis;
  relay: OutboxRelay;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createPostgresActivities(deps.db),
    ...createVaultActivities(deps.kv),
    ...createNatsActivities(deps.relay),
    ...createRedisActivities(deps.redis),
  };
}

export type Activities = ReturnType<typeof createActivities>;
