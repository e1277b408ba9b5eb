import Router from '@koa/router';
import { LINT_KINDS } from '../domain/routing-lint';
import type { RoutingLintService } from '../services/routing-lint';
import type { AuthState } from './shared/auth';
import { z } from './shared/http';
import { commonErrors, json, type AdminDoc } from './shared/openapi';
import { parse } from './shared/validate';

/** GET /routing/lint: rule-set mistakes (src/domain/routing-lint.ts lists the kinds). */

/** A lint finding: a warning about the rule set, never a refusal. */
export const LintFinding = z
  .object({
    kind: z.enum(LINT_KINDS),
    ruleIds: z.array(z.uuid()),
    operatorIds: z.array(z.uuid()),
    message: z.string(),
  })
  .openapi('LintFinding');

export const LintReport = z.object({ findings: z.array(LintFinding) }).openapi('LintReport');

export function createRoutingLintRouter(lint: RoutingLintService): Router<AuthState> {
  const router = new Router<AuthState>();
  router.get('/routing/lint', async (ctx) => {
    parse(z.strictObject({}), ctx.query, 'query');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { findings: await lint.lint() } satisfies z.infer<typeof LintReport>;
  });
  return router;
}

export function documentRoutingLint({ registry, security }: AdminDoc): void {
  registry.registerPath({
    method: 'get',
    path: '/routing/lint',
    summary: 'Rule-set mistakes: rules that can never win, and others',
    description:
      'Findings, each with a kind, the rules and operators involved and one sentence: `shadowed` (every prefix of the rule is always won by an unscheduled, enabled rule of an ACTIVE operator ranked ahead), `duplicate_prefix_priority` (one operator, one prefix, one priority, twice, both enabled), `mixed_currency_rank` (rules tied on prefix and priority in different currencies), `empty_table`, `never_active_again` (validUntil passed, or none of its weekly windows comes before it), `operator_without_enabled_rule` (an ACTIVE operator nothing routes to). Rules count as competing only when their schedules let them meet (validity, weekly windows in one time zone). Every rule write answers with the findings that involve the rules it wrote.',
    security,
    responses: { 200: json('The findings', LintReport), ...commonErrors },
  });
}
