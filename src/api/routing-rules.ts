import Router from '@koa/router';
import type { RoutingRule, RoutingRuleInput as RuleInput } from '../domain/operator';
import {
  COST_INTEGER_DIGITS,
  COST_PATTERN,
  COST_SCALE,
  CURRENCIES,
  INLINE_PREFIXES_MAX,
  isCurrency,
  isTimeZone,
  normalizePrefix,
  PRIORITY_RANGE,
  TIME_OF_DAY_PATTERN,
  WEEKDAYS,
  WINDOW_START_PATTERN,
  WEIGHT_RANGE,
} from '../domain/routing';
import { RoutingRule as RoutingRuleSchema } from '../domain/schemas';
import { LintFinding } from './routing-lint';
import type { RoutingRuleService } from '../services/routing-rules';
import type { AuthState } from './shared/auth';
import { instantPattern, OperatorIdParams, requiredIfMatch, sendVersioned, z } from './shared/http';
import {
  bodyTooLarge,
  undecodableBody,
  commonErrors,
  etagHeader,
  ifMatch,
  json,
  location,
  problem,
  type AdminDoc,
} from './shared/openapi';
import { BEYOND_SCHEMA, parse } from './shared/validate';

/** /operators/{id}/routing-rules: the operator's rule set, one rule, or all at once. */

/** An E.164 prefix as given: 1–15 digits, a leading `+` dropped. */
const PrefixText = z.string().regex(/^\+?[0-9]{1,15}$/, 'E.164 digits only, 1 to 15 of them (a leading + is dropped)');
export const PrefixInput = PrefixText.transform((p) => normalizePrefix(p) as string);

const WindowStart = z.string().regex(WINDOW_START_PATTERN, 'a time of day HH:MM, 00:00 to 23:59');
const WindowEnd = z.string().regex(TIME_OF_DAY_PATTERN, 'a time of day HH:MM, 00:00 to 24:00');

const WeeklyInput = z.strictObject({
  // The document lists the canonical names; the server also takes the aliases ICU resolves.
  timeZone: z
    .string()
    .refine(isTimeZone, 'an IANA time zone such as "Europe/Berlin"')
    .openapi({ enum: Intl.supportedValuesOf('timeZone') }),
  windows: z
    .array(
      z.strictObject({
        days: z
          .array(z.enum(WEEKDAYS))
          .min(1)
          .max(7)
          .refine((d) => new Set(d).size === d.length, 'each day once')
          // The refinement hides these from the generator; the document must still say them.
          .openapi({ minItems: 1, maxItems: 7, uniqueItems: true, description: 'The days the window starts on' }),
        start: WindowStart,
        end: WindowEnd.openapi({
          description: 'Exclusive. At or before start, the window runs past midnight and ends on the next day.',
        }),
      }),
    )
    .min(1)
    .max(50),
});

/**
 * An instant (RFC 3339) to the millisecond at most: PostgreSQL would round more decimals and
 * JavaScript cut them, so that validFrom < validUntil could hold for one and not the other.
 */
const Instant = z
  .string()
  .regex(instantPattern(3), 'an RFC 3339 instant (offset hh:mm or Z), to the millisecond at most')
  .openapi({ format: 'date-time' });

const ruleFields = {
  prefixTableId: z.uuid().transform((id) => id.toLowerCase()),
  prefixes: z
    .array(PrefixText)
    .min(1)
    .max(INLINE_PREFIXES_MAX)
    // Unique as written, as the document says; "+254" and "254" are one prefix and kept once.
    .refine((p) => new Set(p).size === p.length, 'each prefix once')
    .openapi({
      minItems: 1,
      maxItems: INLINE_PREFIXES_MAX,
      uniqueItems: true,
      description: 'Unique as written; "+254" and "254" are one prefix and stored once',
    })
    .transform((p) => [...new Set(p.map((one) => normalizePrefix(one) as string))]),
  priority: z
    .number()
    .int()
    .min(PRIORITY_RANGE.min)
    .max(PRIORITY_RANGE.max)
    .openapi({ description: '0 is the most preferred' }),
  weight: z
    .number()
    .int()
    .min(WEIGHT_RANGE.min)
    .max(WEIGHT_RANGE.max)
    .openapi({ description: 'Share of traffic within a group of equal rank (weight / sum of the group)' }),
  costPerSegment: z
    .string()
    .regex(
      COST_PATTERN,
      `a decimal amount such as "0.0125": up to ${COST_INTEGER_DIGITS} digits and ${COST_SCALE} decimals`,
    ),
  currency: z
    .string()
    .refine(isCurrency, 'an ISO 4217 currency code such as "EUR"')
    .openapi({ enum: [...CURRENCIES] }),
  enabled: z.boolean(),
  validFrom: Instant.nullable(),
  validUntil: Instant.nullable(),
  weekly: WeeklyInput.nullable(),
};

function checkRule(rule: Partial<RuleInput>, ctx: z.RefinementCtx): void {
  if ((rule.prefixTableId === undefined) === (rule.prefixes === undefined)) {
    ctx.addIssue({ code: 'custom', message: 'give exactly one of prefixTableId and prefixes', path: ['prefixes'] });
  }
  if (rule.validFrom && rule.validUntil && Date.parse(rule.validFrom) >= Date.parse(rule.validUntil)) {
    ctx.addIssue({
      code: 'custom',
      message: 'validUntil must be after validFrom',
      path: ['validUntil'],
      params: BEYOND_SCHEMA,
    });
  }
}

/** A rule: a prefix table or inline prefixes (exactly one), rank, share, cost, and an optional schedule. */
export const RoutingRuleInput = z
  .strictObject({
    prefixTableId: ruleFields.prefixTableId.optional(),
    prefixes: ruleFields.prefixes.optional(),
    priority: ruleFields.priority,
    weight: ruleFields.weight,
    costPerSegment: ruleFields.costPerSegment,
    currency: ruleFields.currency,
    enabled: ruleFields.enabled.default(true),
    validFrom: ruleFields.validFrom.optional(),
    validUntil: ruleFields.validUntil.optional(),
    weekly: ruleFields.weekly.optional(),
  })
  .superRefine(checkRule)
  .openapi('RoutingRuleInput', {
    oneOf: [{ required: ['prefixTableId'] }, { required: ['prefixes'] }],
  });

/** The fields to change; `prefixes` and `prefixTableId` replace each other; null clears a schedule field. */
const RoutingRulePatch = z
  .strictObject({
    prefixTableId: ruleFields.prefixTableId.optional(),
    prefixes: ruleFields.prefixes.optional(),
    priority: ruleFields.priority.optional(),
    weight: ruleFields.weight.optional(),
    costPerSegment: ruleFields.costPerSegment.optional(),
    currency: ruleFields.currency.optional(),
    enabled: ruleFields.enabled.optional(),
    validFrom: ruleFields.validFrom.optional(),
    validUntil: ruleFields.validUntil.optional(),
    weekly: ruleFields.weekly.optional(),
  })
  .refine((p) => Object.values(p).some((v) => v !== undefined), 'give at least one field to change')
  .refine((p) => p.prefixTableId === undefined || p.prefixes === undefined, {
    message: 'give at most one of prefixTableId and prefixes',
    path: ['prefixes'],
  })
  .openapi('RoutingRulePatch', {
    minProperties: 1,
    not: { required: ['prefixTableId', 'prefixes'] },
  });

const RoutingRuleSetInput = z
  .strictObject({ routingRules: z.array(RoutingRuleInput).max(500) })
  .openapi('RoutingRuleSetInput');

const RoutingRuleSet = z
  .object({ operatorId: z.uuid(), version: z.number().int(), routingRules: z.array(RoutingRuleSchema) })
  .openapi('RoutingRuleSet');

const RoutingRuleWrite = RoutingRuleSet.extend({
  findings: z.array(LintFinding).nullable().openapi({
    description:
      'Lint findings that involve the rules written: warnings, never refusals. null when the lint could not run after the write, which is committed (GET /routing/lint later)',
  }),
}).openapi('RoutingRuleWrite');

const RuleParams = OperatorIdParams.extend({ ruleId: z.uuid().transform((id) => id.toLowerCase()) });

/** The rule after a patch, checked as a whole by the same rules as a new one. */
function merged(current: RoutingRule, patch: z.output<typeof RoutingRulePatch>): RuleInput {
  const { id, ...base } = current;
  const target =
    patch.prefixes !== undefined
      ? { prefixes: patch.prefixes, prefixTableId: undefined }
      : patch.prefixTableId !== undefined
        ? { prefixTableId: patch.prefixTableId, prefixes: undefined }
        : {};
  const next = { ...base, ...patch, ...target };
  return parse(RoutingRuleInput, JSON.parse(JSON.stringify(next)), 'body');
}

export function createRoutingRulesRouter(rules: RoutingRuleService): Router<AuthState> {
  const router = new Router<AuthState>();
  const base = '/operators/:id/routing-rules';

  router.get(base, async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const set = await rules.list(id);
    sendVersioned(ctx, set);
  });

  router.put(base, async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const { routingRules } = parse(RoutingRuleSetInput, ctx.request.body, 'body');
    const set = await rules.replace(id, routingRules, requiredIfMatch(ctx.get('If-Match')), ctx.state.actor);
    sendVersioned(ctx, set);
  });

  router.post(base, async (ctx) => {
    const { id } = parse(OperatorIdParams, ctx.params, 'path');
    const rule = parse(RoutingRuleInput, ctx.request.body, 'body');
    const { ruleId, ...set } = await rules.add(id, rule, requiredIfMatch(ctx.get('If-Match')), ctx.state.actor);
    ctx.status = 201;
    ctx.set('Location', `/v1/admin/operators/${id}/routing-rules/${ruleId}`);
    sendVersioned(ctx, set);
  });

  router.patch(`${base}/:ruleId`, async (ctx) => {
    const { id, ruleId } = parse(RuleParams, ctx.params, 'path');
    const patch = parse(RoutingRulePatch, ctx.request.body, 'body');
    const expected = requiredIfMatch(ctx.get('If-Match'));
    const set = await rules.update(
      id,
      ruleId,
      (current) => merged(current, patch),
      expected,
      ctx.state.actor,
      patch.prefixTableId,
    );
    sendVersioned(ctx, set);
  });

  router.delete(`${base}/:ruleId`, async (ctx) => {
    const { id, ruleId } = parse(RuleParams, ctx.params, 'path');
    const set = await rules.remove(id, ruleId, requiredIfMatch(ctx.get('If-Match')), ctx.state.actor);
    sendVersioned(ctx, set);
  });

  return router;
}

const RULE_WRITE =
  'Needs If-Match with the operator version (ETag of GET /operators/{id} or of the rule set). Bumps the version and publishes operator.config.routing_updated with the whole rule set after the change. Answers with the rule set.';
/** What a delete may answer besides commonErrors: it sends no body and names no table. */
const deleteErrors = {
  404: problem('No such operator (or rule)'),
  409: problem('The operator is still being created or can no longer change'),
  412: problem('If-Match does not match the current version'),
  428: problem('If-Match is missing'),
};
const writeErrors = {
  ...deleteErrors,
  422: problem(
    'Well-formed but cannot be applied: validUntil not after validFrom, or a prefix table that does not exist or is deleted; `errors` names the field',
  ),
  413: bodyTooLarge(
    'the rule set after the change would make an event larger than a NATS message (`errors` names the field)',
  ),
  415: undecodableBody,
};

export function documentRoutingRules({ registry, security }: AdminDoc): void {
  const path = '/operators/{id}/routing-rules';
  const set = { ...json('The rule set', RoutingRuleSet), headers: etagHeader };
  const written = { ...json('The rule set after the write, and its findings', RoutingRuleWrite), headers: etagHeader };
  registry.registerPath({
    method: 'get',
    path,
    summary: "The operator's routing rules",
    security,
    request: { params: OperatorIdParams },
    responses: { 200: set, ...commonErrors, 404: problem('No such operator') },
  });
  registry.registerPath({
    method: 'put',
    path,
    summary: "Replace the operator's whole rule set atomically",
    description: `A bad rule writes none; \`errors\` names it by index (routingRules[i].field). ${RULE_WRITE}`,
    security,
    request: {
      params: OperatorIdParams,
      headers: ifMatch,
      body: { content: { 'application/json': { schema: RoutingRuleSetInput } } },
    },
    responses: { 200: written, ...commonErrors, ...writeErrors },
  });
  registry.registerPath({
    method: 'post',
    path,
    summary: 'Add a routing rule',
    description: `${RULE_WRITE} Location names the new rule.`,
    security,
    request: {
      params: OperatorIdParams,
      headers: ifMatch,
      body: { content: { 'application/json': { schema: RoutingRuleInput } } },
    },
    responses: { 201: { ...written, headers: { ...etagHeader, ...location } }, ...commonErrors, ...writeErrors },
  });
  registry.registerPath({
    method: 'patch',
    path: `${path}/{ruleId}`,
    summary: 'Change a routing rule',
    description: `The fields given replace the rule's; the result is checked as a new rule is. ${RULE_WRITE}`,
    security,
    request: {
      params: RuleParams,
      headers: ifMatch,
      body: { content: { 'application/json': { schema: RoutingRulePatch } } },
    },
    responses: { 200: written, ...commonErrors, ...writeErrors },
  });
  registry.registerPath({
    method: 'delete',
    path: `${path}/{ruleId}`,
    summary: 'Delete a routing rule (soft delete)',
    description: RULE_WRITE,
    security,
    request: { params: RuleParams, headers: ifMatch },
    responses: { 200: written, ...commonErrors, ...deleteErrors },
  });
}
