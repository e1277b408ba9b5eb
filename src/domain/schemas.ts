import { z } from 'zod';
import { BIND_TYPES, ENFORCEMENT_MODES, OPERATOR_STATUSES } from './operator';
import { WEEKDAYS } from './routing';

/**
 * The operator as its peers see it, shared by the admin API's answers and the event catalog, so
 * an event's `operator` and a GET's body cannot differ. `meta({ id })` names the schema in
 * openapi/admin.json and docs/asyncapi.yaml.
 */

export const TpsLimit = z
  .strictObject({
    tpsCap: z.number().int().positive().max(100_000),
    burstWindowMs: z.number().int().positive().max(60_000),
    enforcementMode: z.enum(ENFORCEMENT_MODES),
  })
  .meta({ id: 'TpsLimit' });

export const Operator = z
  .object({
    id: z.uuid(),
    name: z.string(),
    host: z.string(),
    port: z.number().int(),
    systemId: z.string(),
    systemType: z.string(),
    bindType: z.enum(BIND_TYPES),
    tls: z.boolean(),
    windowSize: z.number().int(),
    enquireLinkIntervalS: z.number().int(),
    labels: z.record(z.string(), z.string()),
    status: z.enum(OPERATOR_STATUSES),
    statusReason: z.string().nullable(),
    version: z.number().int(),
    credentialsVersion: z.number().int().nullable(),
    tpsLimit: z.union([TpsLimit, z.null()]),
    createdAt: z.iso.datetime(),
    createdBy: z.string(),
    updatedAt: z.iso.datetime(),
    updatedBy: z.string(),
  })
  .meta({ id: 'Operator' });

export const WeeklySchedule = z
  .object({
    timeZone: z.string(),
    windows: z.array(z.object({ days: z.array(z.enum(WEEKDAYS)), start: z.string(), end: z.string() })),
  })
  .meta({ id: 'WeeklySchedule' });

/** A rule as stored: exactly one of `prefixTableId` and `prefixes`; schedule fields null when unset. */
export const RoutingRule = z
  .object({
    id: z.uuid(),
    prefixTableId: z.uuid().optional(),
    prefixes: z.array(z.string()).optional(),
    priority: z.number().int(),
    weight: z.number().int(),
    costPerSegment: z.string(),
    currency: z.string(),
    enabled: z.boolean(),
    validFrom: z.iso.datetime({ offset: true }).nullable(),
    validUntil: z.iso.datetime({ offset: true }).nullable(),
    weekly: WeeklySchedule.nullable(),
  })
  .meta({ id: 'RoutingRule' });

export const PrefixTableChange = z
  .discriminatedUnion('replaced', [
    z.object({
      prefixTableId: z.uuid(),
      tableVersion: z.number().int(),
      entryCount: z.number().int(),
      contentHash: z.string(),
      previousContentHash: z.string(),
      replaced: z.literal(false),
      added: z.array(z.string()),
      removed: z.array(z.string()),
    }),
    z.object({
      prefixTableId: z.uuid(),
      tableVersion: z.number().int(),
      entryCount: z.number().int(),
      contentHash: z.string(),
      previousContentHash: z.string(),
      replaced: z.literal(true),
    }),
  ])
  .meta({ id: 'PrefixTableChange' });
