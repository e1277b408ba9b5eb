import { Redis } from 'ioredis';
import type { Config } from '../platform/config';

export { Redis };

export function createRedis(config: Config['redis']): Redis {
  // Fail commands fast while disconnected instead of queueing them without bound.
  return new Redis(config.url, { maxRetriesPerRequest: 2, enableOfflineQueue: true, lazyConnect: false });
}
