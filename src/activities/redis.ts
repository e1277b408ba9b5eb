import type { Redis } from 'ioredis';
import { healthKey } from '../domain/health';

/** The Redis health cache, as workflows change it. */
export function createRedisActivities(redis: Redis) {
  return {
    /** A deleted operator has no health: the routing engine must not find a stale `UP`. */
    async forgetHealth(operatorId: string): Promise<void> {
      await redis.del(healthKey(operatorId));
    },
  };
}

export type RedisActivities = ReturnType<typeof createRedisActivities>;
