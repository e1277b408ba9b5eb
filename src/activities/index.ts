import type { Db } from '../clients/postgres';
import type { Redis } from '../clients/redis';
import type { KvStore } from '../clients/vault';
import type { OutboxRelay } from '../events/outbox';
import { createDrainActivities } from './drain';
import { createEventActivities } from './events';
import { createOnboardingActivities } from './onboarding';
import { createRotationActivities } from './rotation';

export interface ActivityDeps {
  db: Db;
  kv: KvStore;
  redis: Redis;
  relay: OutboxRelay;
}

/** Every activity the worker registers, one factory per capability, built from injected clients. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createOnboardingActivities(deps),
    ...createRotationActivities(deps),
    ...createDrainActivities(deps),
    ...createEventActivities(deps.relay),
  };
}

export type Activities = ReturnType<typeof createActivities>;
