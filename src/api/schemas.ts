import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { BIND_TYPES, DEFAULT_TPS_LIMIT, ENFORCEMENT_MODES, OPERATOR_STATUSES, SMPP_LIMITS } from '../domain/operator';

extendZodWithOpenApi(z);

/**
 * One schema per request and response: the routes validate with it and the OpenAPI document is
 * generated from it, so the two cannot drift. Request objects are strict: unknown fields (and
 * so `status`, `version`, audit fields) are refused.
 */

const digits = z.string().regex(/^[0-9]{1,15}$/, 'E.164 digits only, 1 to 15 of them');

export const TpsLimit = z
  .strictObject({
    tpsCap: z.number().int().positive().max(100_000),
    burstWindowMs: z.number().int().positive().max(60_000),
    enforcementMode: z.enum(ENFORCEMENT_MODES),
  })
  .openapi('TpsLimit');

export const RoutingRuleInput = z
  .strictObject({
    prefixTableId: z.uuid().optional(),
    prefixes: z.array(digits).min(1).max(1000).optional(),
    priority: z.number().int().min(0).max(10_000),
    weight: z.number().int().min(0).max(1000),
    costPerSegment: z.string().regex(/^[0-9]{1,8}(\.[0-9]{1,6})?$/, 'a decimal amount such as "0.0125"'),
    currency: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as "EUR"'),
    enabled: z.boolean().default(true),
  })
  .refine((r) => (r.prefixTableId === undefined) !== (r.prefixes === undefined), {
    message: 'give exactly one of prefixTableId and prefixes',
    path: ['prefixes'],
  })
  .openapi('RoutingRuleInput');

const labels = z
  .record(z.string().regex(/^[a-z0-9_.-]{1,63}$/), z.string().max(255))
  .refine((l) => Object.keys(l).length <= 50, 'at most 50 labels');

const metadataFields = {
  name: z.string().trim().min(1).max(200),
  host: z
    .string()
    .min(1)
    .max(253)
    .regex(/^[A-Za-z0-9.:-]+$/, 'a hostname or IP address'),
  port: z.number().int().min(1).max(65535),
  systemType: z.string().max(SMPP_LIMITS.systemType),
  bindType: z.enum(BIND_TYPES),
  tls: z.boolean(),
  windowSize: z.number().int().min(1).max(1000),
  enquireLinkIntervalS: z.number().int().min(5).max(3600),
  labels,
};

export const CreateOperatorRequest = z
  .strictObject({
    ...metadataFields,
    systemId: z.string().min(1).max(SMPP_LIMITS.systemId),
    password: z.string().min(1).max(SMPP_LIMITS.password).openapi({ format: 'password', writeOnly: true }),
    systemType: metadataFields.systemType.default(''),
    tls: metadataFields.tls.default(false),
    windowSize: metadataFields.windowSize.default(10),
    enquireLinkIntervalS: metadataFields.enquireLinkIntervalS.default(30),
    labels: labels.default({}),
    tpsLimit: TpsLimit.default(DEFAULT_TPS_LIMIT),
    routingRules: z.array(RoutingRuleInput).max(100).default([]),
  })
  .openapi('CreateOperatorRequest');

export const PatchOperatorRequest = z
  .strictObject({
    name: metadataFields.name.optional(),
    host: metadataFields.host.optional(),
    port: metadataFields.port.optional(),
    systemType: metadataFields.systemType.optional(),
    bindType: metadataFields.bindType.optional(),
    tls: metadataFields.tls.optional(),
    windowSize: metadataFields.windowSize.optional(),
    enquireLinkIntervalS: metadataFields.enquireLinkIntervalS.optional(),
    labels: labels.optional(),
  })
  .refine((p) => Object.values(p).some((v) => v !== undefined), 'give at least one field to change')
  .openapi('PatchOperatorRequest');

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
    tpsLimit: TpsLimit.nullable(),
    createdAt: z.iso.datetime(),
    createdBy: z.string(),
    updatedAt: z.iso.datetime(),
    updatedBy: z.string(),
  })
  .openapi('Operator');

export const OnboardingAccepted = z
  .object({
    operator: Operator,
    workflowId: z.string(),
    workflowUrl: z.url(),
  })
  .openapi('OnboardingAccepted');

export const DrainAccepted = z
  .object({
    operator: Operator,
    workflowId: z.string(),
    workflowUrl: z.url(),
  })
  .openapi('DrainAccepted');

export const RotateCredentialsRequest = z
  .strictObject({
    password: CreateOperatorRequest.shape.password,
  })
  .openapi('RotateCredentialsRequest');

export const RotationAccepted = z
  .object({
    operatorId: z.uuid(),
    workflowId: z.string(),
    runId: z.string(),
    workflowUrl: z.url(),
  })
  .openapi('RotationAccepted');

export const OperatorPage = z
  .object({
    items: z.array(Operator),
    nextCursor: z.string().nullable(),
  })
  .openapi('OperatorPage');

export const ListOperatorsQuery = z.strictObject({
  status: z.enum(OPERATOR_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).optional(),
  cursor: z.string().max(200).optional(),
});

export const WorkflowRun = z
  .object({
    workflowId: z.string(),
    runId: z.string(),
    type: z.string(),
    status: z.string(),
    startTime: z.iso.datetime(),
    closeTime: z.iso.datetime().nullable(),
    url: z.url(),
  })
  .openapi('WorkflowRun');

export const WorkflowRuns = z.object({ items: z.array(WorkflowRun) }).openapi('WorkflowRuns');

// Lower-cased: the id also names Vault paths, workflow ids and Redis keys, which are case-sensitive.
export const OperatorIdParams = z.object({ id: z.uuid().transform((id) => id.toLowerCase()) });

/** Internal credentials read: the current version unless the connector asks for a rotation's pending one. */
export const CredentialsQuery = z.object({ version: z.enum(['current', 'pending']).default('current') });

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  })
  .catchall(z.unknown())
  .openapi('Problem', { description: 'RFC 9457 problem details' });
