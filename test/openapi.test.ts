import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildAdminOpenApi } from '../src/api/admin-app';
import { createAdminRouter } from '../src/api/admin-app';
import type { HealthReportRoutesDeps } from '../src/api/health';
import { buildInternalOpenApi, createInternalRouter } from '../src/api/internal-app';
import type { CredentialsService } from '../src/services/credentials';
import type { OperatorService } from '../src/services/operators';
import type { PrefixTableService } from '../src/services/prefix-tables';
import type { RoutingSnapshotService } from '../src/services/routing-snapshot';
import type { Db } from '../src/clients/postgres';
import type { AdminServices } from '../src/services';
import { createLogger } from '../src/platform/logger';
import { loadConfig } from '../src/platform/config';
import { startHarness, type Harness } from './support/harness';

/** The OpenAPI document is generated from the route schemas, kept in the repo, and served. */

const committedPath = path.resolve(__dirname, '../openapi/admin.json');
const DRIFT = 'openapi/admin.json is out of date: run `npm run openapi` and commit the result';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

type Doc = ReturnType<typeof buildAdminOpenApi>;
interface SchemaObject {
  additionalProperties?: unknown;
  properties?: Record<string, unknown>;
  required?: string[];
}

/** `METHOD /path` of every operation a document lists, sorted. */
function documentedRoutes(doc: Doc): string[] {
  return Object.entries(doc.paths ?? {})
    .flatMap(([p, item]) =>
      METHODS.filter((m) => (item as Record<string, unknown>)[m]).map((m) => `${m.toUpperCase()} ${p}`),
    )
    .sort();
}

/** `METHOD /path` of every route a router serves (HEAD aside), as the document would write it, sorted. */
function servedRoutes(router: { stack: Array<{ methods: string[]; path: unknown }> }, prefix: string): string[] {
  return router.stack
    .filter((layer) => layer.methods.length > 0)
    .flatMap((layer) =>
      layer.methods
        .filter((m) => m !== 'HEAD')
        .map(
          (m) =>
            `${m} ${String(layer.path)
              .replace(prefix, '')
              .replace(/:(\w+)/g, '{$1}')}`,
        ),
    )
    .sort();
}

/** A JSON round trip: what a client of the file or of the endpoint actually sees. */
const asJson = (doc: Doc): unknown => JSON.parse(JSON.stringify(doc)) as unknown;

describe('admin OpenAPI document', () => {
  const generated = buildAdminOpenApi();

  it('is kept in the repo as the schemas generate it', () => {
    let committed: unknown;
    try {
      committed = JSON.parse(readFileSync(committedPath, 'utf8')) as unknown;
    } catch (err) {
      throw new Error(`${DRIFT} (${(err as Error).message})`, { cause: err });
    }
    try {
      expect(committed).toEqual(asJson(generated));
    } catch (err) {
      // toEqual's message shows the difference; ours says how to fix it.
      throw new Error(`${DRIFT}\n\n${(err as Error).message}`, { cause: err });
    }
  });

  it('names every route the admin router serves', () => {
    const documented = documentedRoutes(generated);
    expect(documented).toEqual(
      expect.arrayContaining([
        'POST /operators',
        'GET /operators',
        'GET /operators/{id}',
        'PATCH /operators/{id}',
        'GET /operators/{id}/workflows',
      ]),
    );
    // And no route of the admin router goes undocumented (a new route must reach the document too).
    const router = createAdminRouter({
      config: loadConfig(),
      db: {} as Db,
      log: createLogger('silent'),
      ...({} as AdminServices),
    });
    const served = servedRoutes(router, '/v1/admin');
    expect(served.length).toBeGreaterThanOrEqual(9);
    expect(documented).toEqual(served);
    expect(generated.servers).toEqual([{ url: '/v1/admin' }]);
  });

  it('describes the onboarding body as closed: no status, version or audit fields', () => {
    const schema = generated.components?.schemas?.CreateOperatorRequest as SchemaObject | undefined;
    expect(schema).toBeDefined();
    expect(schema?.additionalProperties).toBe(false);
    const fields = Object.keys(schema?.properties ?? {});
    expect(fields).toEqual(expect.arrayContaining(['name', 'host', 'port', 'systemId', 'password', 'bindType']));
    for (const forbidden of ['status', 'version', 'createdBy', 'updatedBy', 'id']) {
      expect(fields).not.toContain(forbidden);
    }
    expect(schema?.properties?.password).toMatchObject({ writeOnly: true, maxLength: 8 });
  });

  describe('served by the service', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness();
    });
    afterAll(async () => {
      await h?.stop();
    });

    it('answers GET /v1/admin/openapi.json without a token with the same document', async () => {
      const res = await fetch(`${h.baseUrl}/openapi.json`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('application/json');
      expect(await res.json()).toEqual(asJson(generated));
    });
  });

  describe('of the internal API', () => {
    const internal = buildInternalOpenApi();
    const internalPath = path.resolve(__dirname, '../openapi/internal.json');

    it('is kept in the repo as the schemas generate it', () => {
      const committed = JSON.parse(readFileSync(internalPath, 'utf8')) as unknown;
      try {
        expect(committed).toEqual(asJson(internal));
      } catch (err) {
        throw new Error(`openapi/internal.json is out of date: run \`npm run openapi\`\n\n${(err as Error).message}`, {
          cause: err,
        });
      }
    });

    it('names every route the internal router serves, and no other', () => {
      const router = createInternalRouter({
        operators: {} as OperatorService,
        credentials: {} as CredentialsService,
        health: {} as HealthReportRoutesDeps,
        routing: { snapshots: {} as RoutingSnapshotService, prefixTables: {} as PrefixTableService },
      });
      const served = servedRoutes(router, '/v1/internal');
      const documented = documentedRoutes(internal);
      expect(served).toHaveLength(5);
      expect(documented).toEqual(served);
      expect(internal.components?.securitySchemes).toEqual({
        mutualTLS: expect.objectContaining({ type: 'mutualTLS' }),
      });
    });
  });
});
