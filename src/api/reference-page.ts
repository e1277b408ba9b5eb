import { readFileSync } from 'node:fs';
import path from 'node:path';
import Router from '@koa/router';

/**
 * The admin API reference: the served OpenAPI document rendered by Swagger UI, from the npm
 * package `swagger-ui-dist` (its files served from here, nothing from a CDN). Public, as the
 * document is: GET /v1/admin/reference.
 */

export const REFERENCE_PREFIX = '/v1/admin/reference';

const dist = path.dirname(require.resolve('swagger-ui-dist/package.json'));
const asset = (file: string) => readFileSync(path.join(dist, file));

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>operator-management-service admin API</title>
    <link rel="stylesheet" href="${REFERENCE_PREFIX}/swagger-ui.css" />
  </head>
  <body>
    <div id="reference"></div>
    <script src="${REFERENCE_PREFIX}/swagger-ui-bundle.js"></script>
    <script src="${REFERENCE_PREFIX}/init.js"></script>
  </body>
</html>
`;

// A file of its own rather than an inline script, so a strict Content-Security-Policy at the gateway still allows it.
// validatorUrl: null, or Swagger UI sends the document's URL to validator.swagger.io.
const INIT = `window.ui = SwaggerUIBundle({ url: '/v1/admin/openapi.json', dom_id: '#reference', deepLinking: true, validatorUrl: null });\n`;

export function createReferenceRouter(): Router {
  const files: Record<string, { type: string; body: string | Buffer }> = {
    '': { type: 'text/html; charset=utf-8', body: PAGE },
    '/swagger-ui.css': { type: 'text/css; charset=utf-8', body: asset('swagger-ui.css') },
    '/swagger-ui-bundle.js': { type: 'text/javascript; charset=utf-8', body: asset('swagger-ui-bundle.js') },
    '/init.js': { type: 'text/javascript; charset=utf-8', body: INIT },
  };
  const router = new Router({ prefix: REFERENCE_PREFIX });
  for (const [file, { type, body }] of Object.entries(files)) {
    router.get(file || '/', (ctx) => {
      ctx.type = type;
      ctx.set('Cache-Control', 'public, max-age=300');
      ctx.body = body;
    });
  }
  return router;
}
