import type { Db } from '../clients/postgres';
import type { KvStore } from '../clients/vault';
import type { OutboxRelay } from '../events/outbox';
import { createNatsActivities } from './nats';
import { createPostgresActivities } from './postgres';
import { createVaultActivities } from './vault';

export interface ActivityDeps {
  db: Db;
  kv: KvStore;
  relay: OutboxRelay;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createPostgresActivities(deps.db),
    ...createVaultActivities(deps.kv),
    ...createNatsActivities(deps.relay),
  };
}

export type Activities = ReturnType<typeof createActivities>;
