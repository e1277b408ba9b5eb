import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../src/platform/config';
import { createRedis, type Redis } from '../../src/clients/redis';

describe('Redis (real server)', () => {
  let redis: Redis;
  const key = `ops:test:${randomUUID()}`;

  beforeAll(() => {
    redis = createRedis(loadConfig().redis);
  });

  afterAll(async () => {
    await redis.del(key);
    await redis.quit();
  });

  it('stores a value with EX 60 and reads it back with its TTL', async () => {
    const value = JSON.stringify({ status: 'UP', marker: randomUUID() });
    expect(await redis.set(key, value, 'EX', 60)).toBe('OK');

    expect(await redis.get(key)).toBe(value);
    const ttl = await redis.ttl(key);
    expect(ttl).toBeGreaterThanOrEqual(1);
    expect(ttl).toBeLessThanOrEqual(60);

    expect(await redis.del(key)).toBe(1);
    expect(await redis.get(key)).toBeNull();
  });
});
