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
