import type { Redis } from 'ioredis';

/**
 * Fails when a secret appears in a text, without printing either: jest's own `not.toContain`
 * message would show the secret it was asked to keep out of sight (test output included).
 */
export function expectNoSecret(text: string, secret: string, where = 'the checked text'): void {
  if (!secret) throw new Error('expectNoSecret needs a non-empty secret');
  if (text.includes(secret)) throw new Error(`a secret (${secret.length} characters) appeared in ${where}`);
}

/** Every key and value in Redis, one entry each (the instance is shared: all of it, whoever wrote it). */
export async function redisEntries(redis: Redis): Promise<Array<{ key: string; value: string }>> {
  const entries: Array<{ key: string; value: string }> = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 500);
    cursor = next;
    for (const key of keys) entries.push({ key, value: await valueOf(redis, key) });
  } while (cursor !== '0');
  return entries;
}

async function valueOf(redis: Redis, key: string): Promise<string> {
  switch (await redis.type(key)) {
    case 'string':
      return (await redis.get(key)) ?? '';
    case 'hash':
      return JSON.stringify(await redis.hgetall(key));
    case 'list':
      return JSON.stringify(await redis.lrange(key, 0, -1));
    case 'set':
      return JSON.stringify(await redis.smembers(key));
    case 'zset':
      return JSON.stringify(await redis.zrange(key, 0, -1));
    case 'stream':
      return JSON.stringify(await redis.xrange(key, '-', '+'));
    default:
      return '';
  }
}
