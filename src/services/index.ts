import type { Client } from '@temporalio/client';
import type { NatsConnection } from 'nats';
import type { Db } from '../clients/postgres';
import type { Redis } from '../clients/redis';
import type { KvStore } from '../clients/vault';
import { HealthCache } from '../health/cache';
import { HealthStatusView } from '../health/status-view';
import type { Config } from '../platform/config';
import type { Logger } from '../platform/logger';
import { workflowStartCounter } from '../platform/workflow-metrics';
import type { Registry } from 'prom-client';
import { CredentialsService } from './credentials';
import { DrainService } from './drain';
import { HealthService } from './health';
import { OnboardingService } from './onboarding';
import { OperatorService } from './operators';
import { PrefixTableService } from './prefix-tables';
import { RotationService } from './rotation';
import { RoutingExplainService } from './routing-explain';
import { RoutingLintService } from './routing-lint';
import { RoutingRuleService } from './routing-rules';
import { RoutingSnapshotService } from './routing-snapshot';

/** The services behind the admin API, one per capability. */
export interface AdminServices {
  operators: OperatorService;
  onboarding: OnboardingService;
  rotation: RotationService;
  drain: DrainService;
  health: HealthService;
  routingRules: RoutingRuleService;
  prefixTables: PrefixTableService;
  routingExplain: RoutingExplainService;
  routingLint: RoutingLintService;
}

export function createAdminServices(
  clients: { db: Db; kv: KvStore; redis: Redis; temporal: Client },
  config: Pick<Config, 'temporal' | 'routing'>,
  log: Logger,
  registry?: Registry,
): AdminServices {
  const deps = {
    ...clients,
    config: config.temporal,
    log,
    workflowStarts: registry ? workflowStartCounter(registry) : undefined,
  };
  const operators = new OperatorService(deps);
  const cache = new HealthCache(clients.redis);
  const routingLint = new RoutingLintService(deps);
  return {
    operators,
    onboarding: new OnboardingService(deps),
    rotation: new RotationService(deps),
    drain: new DrainService({ ...deps, operators }),
    health: new HealthService({ db: clients.db, cache }),
    routingRules: new RoutingRuleService({ ...deps, lint: routingLint }),
    prefixTables: new PrefixTableService(deps),
    routingExplain: new RoutingExplainService({
      db: clients.db,
      health: new HealthStatusView(clients.redis, cache, log, config.routing.explainCacheTtlS * 1000),
      log,
      cacheTtlMs: config.routing.explainCacheTtlS * 1000,
    }),
    routingLint,
  };
}

/** The services behind the internal API (smpp-connector, routing-engine). */
export interface InternalServices {
  operators: OperatorService;
  credentials: CredentialsService;
  routing: { snapshots: RoutingSnapshotService; prefixTables: PrefixTableService };
}

export function createInternalServices(
  clients: { db: Db; kv: KvStore; nats: NatsConnection; temporal: Client },
  config: Pick<Config, 'temporal' | 'nats' | 'vault'>,
  log: Logger,
): InternalServices {
  return {
    operators: new OperatorService({ ...clients, config: config.temporal }),
    credentials: new CredentialsService({
      db: clients.db,
      kv: clients.kv,
      log,
      cacheTtlMs: (config.vault.credentialsCacheTtlS ?? 0) * 1000,
    }),
    routing: {
      snapshots: new RoutingSnapshotService({ db: clients.db, nats: clients.nats, stream: config.nats.stream }),
      prefixTables: new PrefixTableService({ db: clients.db }),
    },
  };
}
