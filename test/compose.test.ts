import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

// docker-compose.yml and the Dockerfile describe the local stack for people with Docker. No engine
// runs here, so this checks what can drift silently: service names, roles, env var names.

const root = path.resolve(__dirname, '..');
const read = (file: string): string => readFileSync(path.join(root, file), 'utf8');

type Env = Record<string, string>;
interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Env | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
}
interface Compose {
  services: Record<string, Service>;
}

// Compose resolves `<<` merge keys (the shared env anchor); so must the parser.
const loadCompose = (): Compose => parse(read('docker-compose.yml'), { merge: true }) as Compose;

const configSource = read('src/platform/config.ts');

/** Environment as a map, from either compose form (map or `KEY=value` list). */
function envOf(service: Service): Env {
  const env = service.environment ?? {};
  if (!Array.isArray(env)) {
    return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
  }
  return Object.fromEntries(
    env.map((entry) => {
      const i = entry.indexOf('=');
      return i < 0 ? [entry, ''] : [entry.slice(0, i), entry.slice(i + 1)];
    }),
  );
}

function argsOf(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value.map(String) : value.split(/\s+/).filter(Boolean);
}

function builtFromDockerfile(service: Service): boolean {
  if (service.build === undefined) return false;
  if (typeof service.build === 'string') return path.resolve(root, service.build) === root;
  return (
    path.resolve(root, service.build.context ?? '.') === root &&
    (service.build.dockerfile ?? 'Dockerfile') === 'Dockerfile'
  );
}

function dependsOn(service: Service): Record<string, string | undefined> {
  const deps = service.depends_on ?? {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((d) => [d, undefined]));
  return Object.fromEntries(Object.entries(deps).map(([name, d]) => [name, d?.condition]));
}

/** A variable is "read by config.ts" when it is a key of its env schema (`NAME: z...`). */
const configReads = (name: string): boolean => new RegExp(`^\\s*${name}:\\s`, 'm').test(configSource);

// Process roles the service process accepts, taken from config.ts itself.
const knownRoles = (/const roles = \[([^\]]*)\]/.exec(configSource)?.[1] ?? '')
  .split(',')
  .map((s) => s.trim().replace(/^'|'$/g, ''))
  .filter(Boolean);

// Services running dist/main.js and the role each must run.
const expectedRoles: Record<string, string> = { api: 'api', worker: 'worker' };
// Every service process: the roles of dist/main.js, and health ingestion (dist/health-main.js).
const serviceProcesses = [...Object.keys(expectedRoles), 'health-worker'];

describe('docker-compose.yml', () => {
  it('parses into a map of services', () => {
    const compose = loadCompose();
    expect(typeof compose.services).toBe('object');
    expect(compose.services).not.toBeNull();
  });

  it('names every service of the local topology', () => {
    const names = Object.keys(loadCompose().services);
    for (const name of [
      'postgres',
      'redis',
      'nats',
      'temporal',
      'vault',
      'migrate',
      'api',
      'worker',
      'health-worker',
    ]) {
      expect(names).toContain(name);
    }
  });

  it('runs each process role from the Dockerfile with the right PROCESS_ROLES', () => {
    expect(knownRoles.sort()).toEqual(['api', 'worker']);
    const { services } = loadCompose();

    // Every Dockerfile service that keeps the image's CMD (dist/main.js) is one of the roles.
    const mainServices = Object.entries(services)
      .filter(([, s]) => builtFromDockerfile(s) && s.command === undefined && s.entrypoint === undefined)
      .map(([name]) => name)
      .sort();
    expect(mainServices).toEqual(Object.keys(expectedRoles).sort());

    for (const [name, role] of Object.entries(expectedRoles)) {
      const service = services[name];
      expect(service && builtFromDockerfile(service)).toBe(true);
      expect({ name, roles: envOf(service!).PROCESS_ROLES }).toEqual({ name, roles: role });
      expect(knownRoles).toContain(role);
    }
  });

  it('runs health ingestion as its own process from the same image', () => {
    const health = loadCompose().services['health-worker']!;
    expect(builtFromDockerfile(health)).toBe(true);
    expect(argsOf(health.command)).toEqual(['node', 'dist/health-main.js']);
    expect(envOf(health).PROCESS_ROLES).toBeUndefined();
  });

  it('runs the migrations from the same image with scripts/migrate.sh', () => {
    const migrate = loadCompose().services.migrate!;
    expect(builtFromDockerfile(migrate)).toBe(true);
    expect(argsOf(migrate.command).join(' ')).toMatch(/scripts\/migrate\.sh up$/);
    expect(envOf(migrate).PROCESS_ROLES).toBeUndefined();
  });

  it('starts the service processes only after the migrations and the Vault set-up succeeded', () => {
    const { services } = loadCompose();
    for (const name of serviceProcesses) {
      const deps = dependsOn(services[name]!);
      expect({ name, migrate: deps.migrate }).toEqual({ name, migrate: 'service_completed_successfully' });
      expect({ name, vaultInit: deps['vault-init'] }).toEqual({ name, vaultInit: 'service_completed_successfully' });
      for (const infra of ['postgres', 'redis', 'nats', 'temporal', 'vault']) {
        expect({ name, infra, condition: deps[infra] }).toEqual({ name, infra, condition: 'service_healthy' });
      }
    }
  });

  it('registers the OperatorId search attribute on the Temporal dev server', () => {
    const args = argsOf(loadCompose().services.temporal!.command);
    expect(args.slice(0, 2)).toEqual(['server', 'start-dev']);
    const registered = args.flatMap((arg, i) => {
      if (arg === '--search-attribute') return [args[i + 1] ?? ''];
      if (arg.startsWith('--search-attribute=')) return [arg.slice('--search-attribute='.length)];
      return [];
    });
    expect(registered).toContain('OperatorId=Keyword');
  });

  it('configures KV v2 at secret/ with max_versions=20 in the Vault set-up job', () => {
    const init = loadCompose().services['vault-init']!;
    const script = argsOf(init.command).join(' ');
    expect(script).toMatch(/bao write -f secret\/config max_versions=20/);
    expect(dependsOn(init).vault).toBe('service_healthy');
  });

  it('passes only env vars that src/platform/config.ts reads', () => {
    const { services } = loadCompose();
    const appServices = Object.entries(services).filter(([, s]) => builtFromDockerfile(s));
    expect(appServices.length).toBeGreaterThanOrEqual(4);
    for (const [name, service] of appServices) {
      const unknown = Object.keys(envOf(service)).filter((key) => !configReads(key));
      expect({ service: name, unknown }).toEqual({ service: name, unknown: [] });
    }
  });

  it('points the service processes at the compose services, with dev auth and plain internal HTTP', () => {
    const { services } = loadCompose();
    const names = new Set(Object.keys(services));
    for (const name of serviceProcesses) {
      const env = envOf(services[name]!);
      for (const key of ['DATABASE_URL', 'REDIS_URL', 'NATS_URL', 'VAULT_ADDR']) {
        expect({ name, key, host: names.has(new URL(env[key] ?? 'x://missing').hostname) }).toEqual({
          name,
          key,
          host: true,
        });
      }
      expect({ name, temporal: names.has((env.TEMPORAL_ADDRESS ?? '').split(':')[0] ?? '') }).toEqual({
        name,
        temporal: true,
      });
      expect(env.BIND_HOST).toBe('0.0.0.0');
      expect(env.VAULT_TOKEN).toBe('dev-root-token');
      expect(env.INTERNAL_TLS).toBe('false');
    }
  });
});

describe('Dockerfile', () => {
  const file = path.join(root, 'Dockerfile');

  it('exists and by default runs dist/main.js as the non-root node user', () => {
    expect(existsSync(file)).toBe(true);
    const lines = readFileSync(file, 'utf8').split('\n');
    const cmd = lines.filter((l) => /^CMD\s/.test(l)).pop() ?? '';
    const args = JSON.parse(cmd.replace(/^CMD\s+/, '')) as string[];
    expect(args).toEqual(['node', 'dist/main.js']);
    expect(lines.filter((l) => /^USER\s/.test(l)).pop()).toBe('USER node');
  });

  it('sets only env vars that src/platform/config.ts reads, and points at the prebuilt workflow bundle', () => {
    const source = readFileSync(file, 'utf8').replace(/\\\n/g, ' ');
    const runtime = source.slice(source.lastIndexOf('\nFROM '));
    const envLines = runtime.split('\n').filter((l) => /^ENV\s/.test(l));
    const pairs = Object.fromEntries(
      envLines.flatMap((l) => [...l.matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)].map((m) => [m[1]!, m[2]!])),
    );
    expect(pairs.TEMPORAL_WORKFLOW_BUNDLE).toBe('/app/dist/workflow-bundle.js');
    expect(pairs.NODE_ENV).toBe('production');
    const unknown = Object.keys(pairs).filter((key) => !key.startsWith('NPM_CONFIG_') && !configReads(key));
    expect(unknown).toEqual([]);
  });
});

describe('monitoring in docker-compose.yml', () => {
  interface Mounted {
    volumes?: string[];
  }
  const services = (parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Mounted> })
    .services;
  const mounts = (name: string) =>
    (services[name]?.volumes ?? []).map((v) => v.split(':')[0] ?? '').filter((p) => p.startsWith('./'));

  it('mounts the repository’s Prometheus config, alert rules, Grafana provisioning and dashboard', () => {
    expect(mounts('prometheus')).toEqual(['./monitoring/prometheus.yml', './monitoring/alerts.yml']);
    expect(mounts('grafana')).toEqual(['./monitoring/grafana/provisioning', './monitoring/grafana/dashboards']);
    for (const p of [...mounts('prometheus'), ...mounts('grafana')]) expect(existsSync(path.join(root, p))).toBe(true);
  });

  it('scrapes the ops port of every service process of the compose file', () => {
    const config = parse(read('monitoring/prometheus.yml')) as {
      rule_files: string[];
      scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }>;
    };
    const targets = config.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
    expect(targets.sort()).toEqual(['api:9090', 'health-worker:9091', 'worker:9090']);
    expect(config.rule_files).toEqual(['alerts.yml']);
  });
});
