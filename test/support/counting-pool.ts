import type { Db } from '../../src/clients/postgres';

/** A pool whose queries of one named statement are counted (`count()`), everything else passed through. */
export function countingPool(pool: Db, statement: string): { db: Db; count(): number } {
  let count = 0;
  const db = new Proxy(pool, {
    get(target, prop, receiver) {
      if (prop !== 'query') return Reflect.get(target, prop, receiver) as unknown;
      return (config: { name?: string }, ...rest: unknown[]) => {
        if (config?.name === statement) count++;
        return (target.query as (...a: unknown[]) => unknown).call(target, config, ...rest);
      };
    },
  });
  return { db, count: () => count };
}
