import type { WeeklySchedule } from './routing';

/** The operator model shared by the API, the database layer, activities and workflows. */

export const OPERATOR_STATUSES = ['ONBOARDING', 'ACTIVE', 'ONBOARDING_FAILED', 'DRAINING', 'DELETED'] as const;
export type OperatorStatus = (typeof OPERATOR_STATUSES)[number];

export const BIND_TYPES = ['transmitter', 'receiver', 'transceiver'] as const;
export type BindType = (typeof BIND_TYPES)[number];

export const ENFORCEMENT_MODES = ['hard', 'shape', 'monitor'] as const;
export type EnforcementMode = (typeof ENFORCEMENT_MODES)[number];

export const HEALTH_STATUSES = ['UP', 'DEGRADED', 'DOWN', 'AUTH_FAILED'] as const;
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

/** SMPP 3.4 field limits (C-Octet String lengths without the terminating NUL). */
export const SMPP_LIMITS = { systemId: 15, password: 8, systemType: 12 } as const;

export interface OperatorMetadata {
  name: string;
  host: string;
  port: number;
  systemId: string;
  systemType: string;
  bindType: BindType;
  tls: boolean;
  windowSize: number;
  enquireLinkIntervalS: number;
  labels: Record<string, string>;
}

export interface TpsLimit {
  tpsCap: number;
  burstWindowMs: number;
  enforcementMode: EnforcementMode;
}

export interface RoutingRuleInput {
  prefixTableId?: string;
  prefixes?: string[];
  priority: number;
  weight: number;
  /** A decimal string: money is never a float. */
  costPerSegment: string;
  currency: string;
  enabled: boolean;
  validFrom?: string | null;
  validUntil?: string | null;
  weekly?: WeeklySchedule | null;
}

/** The prefix tables a set of rules uses, each once, in the order first named. */
export function tablesUsedBy(rules: readonly Pick<RoutingRuleInput, 'prefixTableId'>[]): string[] {
  return [...new Set(rules.flatMap((r) => (r.prefixTableId ? [r.prefixTableId] : [])))];
}

/**
 * A field error for each rule that names a table not in `live` (the tables found, or locked, for
 * these rules): a rule must never point at a missing or deleted table. `field(i)` is where rule i
 * sits in the request ('' for a lone rule).
 */
export function missingPrefixTableErrors(
  rules: readonly Pick<RoutingRuleInput, 'prefixTableId'>[],
  live: ReadonlySet<string>,
  field: (index: number) => string,
): Array<{ field: string; message: string }> {
  return rules.flatMap((r, i) => {
    if (!r.prefixTableId || live.has(r.prefixTableId)) return [];
    const at = field(i);
    return [{ field: at ? `${at}.prefixTableId` : 'prefixTableId', message: 'no such prefix table' }];
  });
}

export interface RoutingRule extends RoutingRuleInput {
  id: string;
  validFrom: string | null;
  validUntil: string | null;
  weekly: WeeklySchedule | null;
}

export interface Audit {
  createdAt: string;
  createdBy: string;
  updatedAt: string;
  updatedBy: string;
}

export interface Operator extends OperatorMetadata, Audit {
  id: string;
  status: OperatorStatus;
  statusReason: string | null;
  version: number;
  credentialsVersion: number | null;
  tpsLimit: TpsLimit | null;
}

/** Everything onboarding persists, minus the password, which travels only through Vault. */
export interface OperatorDraft {
  id: string;
  metadata: OperatorMetadata;
  tpsLimit: TpsLimit;
  routingRules: RoutingRuleInput[];
}

export const DEFAULT_TPS_LIMIT: TpsLimit = { tpsCap: 50, burstWindowMs: 1000, enforcementMode: 'hard' };
