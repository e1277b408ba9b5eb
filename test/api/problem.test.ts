import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { problemMiddleware } from '../../src/api/shared/problem';
import { createLogger } from '../../src/platform/logger';

/** Koa's own client errors (ctx.throw, http-errors) as problems titled by their status. */
describe('problemMiddleware', () => {
  it.each([
    [416, 'Range not satisfiable'],
    [406, 'Not acceptable'],
    [400, 'Bad request'],
    // Titled as the service's own answers of that status are (same title, same type).
    [413, 'Content too large'],
    [422, 'Unprocessable content'],
  ])('answers a thrown %i as a problem titled %s', async (status, title) => {
    const app = new Koa();
    app.use(problemMiddleware(createLogger('silent')));
    app.use((ctx) => ctx.throw(status, 'what the thrower said'));
    const server = http.createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await res.json()).toMatchObject({ status, title, detail: 'what the thrower said' });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

/** A dependency's failure mapped to a 503 here (no service logged it) is said once in the logs. */
describe('problemMiddleware and a dependency failure', () => {
  it('answers 503 naming it and logs the failure with its code', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger('warn', 'test', { write: (line: string) => void lines.push(JSON.parse(line)) });
    const app = new Koa();
    app.use(problemMiddleware(log));
    app.use(() => {
      throw Object.assign(new Error('could not read block 7 of relation 1663/16384/16385'), {
        code: 'XX001',
        dependency: 'PostgreSQL',
      });
    });
    const server = http.createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/rules`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ dependency: 'PostgreSQL' });
      expect(lines).toEqual([
        expect.objectContaining({
          msg: 'dependency failed; answered 503',
          code: 'XX001',
          dependency: 'PostgreSQL',
          err: expect.stringContaining('could not read block'),
          path: '/rules',
        }),
      ]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
