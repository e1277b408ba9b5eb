import { Redis } from 'ioredis';
import type { Config } from '../platform/config';

export { Redis };

export function createRedis(config: Config['redis']): Redis {
  return new Redis(config.url, {
    // Fail commands fast while disconnected instead of queueing them without bound.
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    lazyConnect: false,
    // A Redis that stopped answering on a connection still open (paused, a route gone) would hold
    // each command until TCP gives up, minutes later: a 503 naming Redis instead. Nothing here
    // blocks on purpose (no BLPOP, no XREAD BLOCK).
    commandTimeout: config.commandTimeoutMs,
  });
}
