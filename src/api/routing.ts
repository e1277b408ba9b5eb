import { Readable } from 'node:stream';
import Router from '@koa/router';
import { HEALTH_STATUSES, OPERATOR_STATUSES } from '../domain/operator';
import { EXCLUSION_REASONS } from '../domain/route-order';
import { WeeklySchedule } from '../domain/schemas';
import type { MatchedRule, RoutingExplainService } from '../services/routing-explain';
import type { RoutingSnapshotService, SnapshotPart } from '../services/routing-snapshot';
import type { InternalState } from './shared/internal-tls';
import { PrefixInput } from './routing-rules';
import type { AuthState } from './shared/auth';
import { instantPattern, z } from './shared/http';
import { commonErrors, json, problem, unavailableProblem, type AdminDoc } from './shared/openapi';
import { parse } from './shared/validate';

/** /routing: what a number would match (explain), in the route order the routing engine implements. */

const ExplainQuery = z.strictObject({
  destination: PrefixInput.openapi({ description: 'The number: E.164 digits, 1 to 15 (a leading + is dropped)' }),
  at: z.string().regex(instantPattern(), 'an RFC 3339 instant (offset hh:mm or Z)').optional().openapi({
    format: 'date-time',
    description: 'The instant to explain (RFC 3339; a + sent as %2B); now by default',
  }),
});

const ExplainedRule = z.object({
  ruleId: z.uuid(),
  operator: z.object({ id: z.uuid(), name: z.string(), status: z.enum(OPERATOR_STATUSES) }),
  matchedPrefix: z.string().openapi({ description: "The rule's longest prefix the number starts with" }),
  source: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('inline') }),
    z.object({ kind: z.literal('table'), prefixTableId: z.uuid(), prefixTableName: z.string() }),
  ]),
  priority: z.number().int(),
  weight: z.number().int(),
  costPerSegment: z.string(),
  currency: z.string(),
  enabled: z.boolean(),
  validFrom: z.string().nullable(),
  validUntil: z.string().nullable(),
  weekly: WeeklySchedule.nullable(),
});

const Explanation = z
  .object({
    destination: z.string(),
    at: z.iso.datetime(),
    ranks: z.array(
      z.object({
        rank: z.number().int().openapi({ description: '1 is tried first' }),
        prefixLength: z.number().int(),
        priority: z.number().int(),
        groups: z
          .array(
            z.object({
              currency: z.string(),
              costPerSegment: z.string(),
              candidates: z.array(
                z.object({
                  rule: ExplainedRule,
                  share: z.number().openapi({ description: 'weight / sum of the group; even when all are 0' }),
                  health: z.enum([...HEALTH_STATUSES, 'UNKNOWN']),
                  skippedNow: z
                    .boolean()
                    .openapi({ description: 'The routing engine would move past it now: health not UP' }),
                }),
              ),
            }),
          )
          .openapi({ description: 'More than one group only when they differ in currency (costs not comparable)' }),
      }),
    ),
    excluded: z
      .array(z.object({ rule: ExplainedRule, reason: z.enum(EXCLUSION_REASONS) }))
      .openapi({ description: 'Longest matched prefix first, then by priority, then by rule id' }),
  })
  .openapi('RouteExplanation');

export function createRoutingRouter(explain: RoutingExplainService): Router<AuthState> {
  const router = new Router<AuthState>();
  router.get('/routing/explain', async (ctx) => {
    const q = parse(ExplainQuery, ctx.query, 'query');
    const answer = await explain.explain(q.destination, q.at ? new Date(q.at) : new Date());
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      ...answer,
      ranks: answer.ranks.map((r) => ({
        ...r,
        groups: r.groups.map((g) => ({
          ...g,
          candidates: g.candidates.map((c) => ({ ...c, rule: shown(c.rule) })),
        })),
      })),
      excluded: answer.excluded.map((e) => ({ rule: shown(e.rule), reason: e.reason })),
    } satisfies z.input<typeof Explanation>;
  });
  return router;
}

/** The rule as the API shows it: its operator as one object. */
function shown(rule: MatchedRule): z.input<typeof ExplainedRule> {
  return {
    ruleId: rule.ruleId,
    operator: { id: rule.operatorId, name: rule.operatorName, status: rule.operatorStatus },
    matchedPrefix: rule.matchedPrefix,
    source: rule.source,
    priority: rule.priority,
    weight: rule.weight,
    costPerSegment: rule.costPerSegment,
    currency: rule.currency,
    enabled: rule.enabled,
    validFrom: rule.validFrom,
    validUntil: rule.validUntil,
    weekly: rule.weekly,
  };
}

/** GET /v1/internal/routing/snapshot: NDJSON, one record a line, streamed from one database snapshot. */
export function createRoutingSnapshotRouter(snapshots: RoutingSnapshotService): Router<InternalState> {
  const router = new Router<InternalState>();
  router.get('/routing/snapshot', async (ctx) => {
    const { parts, close } = await snapshots.open();
    // Ends the snapshot however the answer ends: read to the end, a HEAD, a client gone.
    ctx.res.once('close', () => void close());
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'application/x-ndjson';
    ctx.body = Readable.from(ndjson(parts));
  });
  return router;
}

async function* ndjson(parts: AsyncIterable<SnapshotPart>): AsyncGenerator<string | Buffer> {
  for await (const part of parts) yield 'encoded' in part ? part.encoded : `${JSON.stringify(part)}\n`;
}

export function documentRouting({ registry, security }: AdminDoc): void {
  registry.registerPath({
    method: 'get',
    path: '/routing/explain',
    summary: 'What a number would match: the candidates in route order, and every matching rule that is out',
    description:
      'The route order (the contract the routing engine implements): candidates are enabled rules of ACTIVE operators, within validFrom/validUntil and their weekly windows at `at`, with a prefix the number starts with, each counting with its longest such prefix. Ranked by longer prefix, then lower priority, then lower cost within one currency (different currencies tied on prefix and priority keep equal rank: several groups in one rank); equal candidates form a group sharing traffic by weight. Health is the cache now (UNKNOWN when none); the routing engine skips a candidate that is not UP.',
    security,
    request: { query: ExplainQuery },
    responses: { 200: json('The explanation', Explanation), ...commonErrors },
  });
}

export function documentRoutingSnapshot({ registry, security }: AdminDoc): void {
  registry.registerPath({
    method: 'get',
    path: '/routing/snapshot',
    summary: "Every live operator's routing configuration and the tables its rules use, to start from",
    description:
      'NDJSON, one record a line, streamed from one database snapshot: {"type":"snapshot","stream","streamSequence","takenAt"}, then {"type":"prefixTable","table"} for every table a live rule uses, then their entries in {"type":"prefixTableEntries","prefixTableId","prefixes":[...]} pages of up to 10,000 (tables in no particular order; a table\'s record always comes before its entries), then {"type":"operator","operator","version","routingRules","tpsLimit"} per live operator, then {"type":"end","operators","prefixTables"}. A consumer that loads it, consumes the event stream from streamSequence and ignores every event whose version is not above the snapshot\'s version of its operator misses and repeats nothing. A stream without its end record was cut short: load it again.',
    security,
    responses: {
      200: {
        description: 'The snapshot, NDJSON',
        content: { 'application/x-ndjson': { schema: z.string().openapi({ description: 'One JSON record a line' }) } },
      },
      403: problem('The client certificate is not allowed'),
      503: unavailableProblem('NATS did not say where the stream is; retry'),
    },
  });
}
