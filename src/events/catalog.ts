import { z } from 'zod';
import { Operator, PrefixTableChange, RoutingRule, TpsLimit } from '../domain/schemas';
import { HEALTH_STATUSES } from '../domain/operator';
import { HealthReportSchema } from '../health/report';
import { CONFIG_CHANGES, configSubject, HEALTH_SUBJECT, type ConfigChange } from './envelope';

/**
 * Every event this service sends or receives, as zod schemas: the publishers are typed by them,
 * test/asyncapi.test.ts holds docs/asyncapi.yaml to them, and the tests' event watcher checks
 * each event seen on the stream against them.
 */

const OperatorData = z.object({ operator: Operator });

export const configEventData = {
  created: z.object({ operator: Operator, routingRules: z.array(RoutingRule) }),
  updated: z.object({ operator: Operator, changed: z.array(z.string()) }),
  activated: OperatorData,
  onboarding_failed: z.object({ operator: Operator, reason: z.string() }),
  routing_updated: z.object({ routingRules: z.array(RoutingRule) }),
  tps_updated: z.object({ tpsLimit: TpsLimit }),
  credentials_rotated: z.object({
    credentialsVersion: z.number().int(),
    // Typed nullable like the operator's column; an operator that rotates always has a version.
    previousCredentialsVersion: z.number().int().nullable(),
    state: z.enum(['pending', 'current']),
  }),
  credentials_rolled_back: z.object({
    credentialsVersion: z.number().int().nullable(),
    rejectedCredentialsVersion: z.number().int(),
    reason: z.string(),
  }),
  draining: OperatorData,
  drain_cancelled: OperatorData,
  deleted: z.object({ operator: Operator, reason: z.enum(['drained', 'timeout']) }),
  prefix_table_updated: PrefixTableChange,
} satisfies Record<ConfigChange, z.ZodType>;

export type ConfigEventData<C extends ConfigChange> = z.infer<(typeof configEventData)[C]>;

export const HealthChangedData = z.object({
  status: z.enum(HEALTH_STATUSES),
  previousStatus: z.enum(HEALTH_STATUSES).nullable(),
  boundSessions: z.number().int(),
  inflight: z.number().int(),
  credentialsVersion: z.number().int().nullable(),
  reportedAt: z.string(),
  connectorInstance: z.string(),
});

export const EventEnvelopeSchema = z.object({
  eventId: z.uuid(),
  type: z.string(),
  operatorId: z.uuid(),
  version: z.number().int().min(0),
  occurredAt: z.string(),
  actor: z.string().min(1),
  data: z.record(z.string(), z.unknown()),
});

/** Outbound subjects and the schema of their envelope's `data`. */
export const outboundEvents: ReadonlyMap<string, z.ZodType> = new Map<string, z.ZodType>([
  ...CONFIG_CHANGES.map((c): [string, z.ZodType] => [configSubject(c), configEventData[c]]),
  [HEALTH_SUBJECT, HealthChangedData],
]);

/** Inbound: the connectors' health reports, on `connector.health.<operatorId>`. */
export const inboundEvents: ReadonlyMap<string, z.ZodType> = new Map([
  ['connector.health.{operatorId}', HealthReportSchema],
]);

/** Checks one published event against the catalog; returns what is wrong, or nothing. */
export function problemsOf(event: unknown): string[] {
  const envelope = EventEnvelopeSchema.safeParse(event);
  if (!envelope.success) return envelope.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  const data = outboundEvents.get(envelope.data.type);
  if (!data) return [`type: ${envelope.data.type} is not in the catalog`];
  const parsed = data.safeParse(envelope.data.data);
  return parsed.success ? [] : parsed.error.issues.map((i) => `data.${i.path.join('.')}: ${i.message}`);
}
