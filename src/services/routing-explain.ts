import type { Db } from '../clients/postgres';
import { findTableHits, type OwnedRule } from '../db/routing-explain';
import { isLive } from '../domain/lifecycle';
import type { HealthStatus } from '../domain/operator';
import {
  compareExcluded,
  exclusionOf,
  matchingRule,
  prefixesOf,
  rankCandidates,
  type ExclusionReason,
  type MatchingRule,
} from '../domain/route-order';
import type { Logger } from '../platform/logger';
import type { HealthStatusView } from '../health/status-view';
import { RoutingExplainCache } from './routing-explain-cache';

/**
 * GET /routing/explain: what a number would match at a time, in the route order of
 * src/domain/route-order.ts, with each candidate's health now and the reason of every rule out.
 */

export interface MatchedRule extends MatchingRule {
  operatorName: string;
  /** Inline prefixes, or the table the matched prefix comes from. */
  source: { kind: 'inline' } | { kind: 'table'; prefixTableId: string; prefixTableName: string };
}

export type HealthNow = HealthStatus | 'UNKNOWN';

export interface ExplainedCandidate {
  rule: MatchedRule;
  share: number;
  health: HealthNow;
  /** The routing engine moves past a candidate whose health is not UP (or whose TPS is exhausted). */
  skippedNow: boolean;
}

export interface Explanation {
  destination: string;
  at: string;
  ranks: Array<{
    rank: number;
    prefixLength: number;
    priority: number;
    groups: Array<{ currency: string; costPerSegment: string; candidates: ExplainedCandidate[] }>;
  }>;
  excluded: Array<{ rule: MatchedRule; reason: ExclusionReason }>;
}

export class RoutingExplainService {
  private readonly rules: RoutingExplainCache;
  private readonly health: HealthStatusView;

  /** `cacheTtlMs`: how long the rules may stay in memory once `start`ed (0: never); `health` keeps its own. */
  constructor(private readonly deps: { db: Db; health: HealthStatusView; log: Logger; cacheTtlMs?: number }) {
    this.rules = new RoutingExplainCache(deps.db, deps.log, deps.cacheTtlMs ?? 0);
    this.health = deps.health;
  }

  /** Keeps rules and health in memory, each dropped on a change; until then every explain reads them. */
  start(): void {
    this.rules.start();
    this.health.start();
  }

  stop(): void {
    this.rules.stop();
    this.health.stop();
  }

  async explain(destination: string, at: Date): Promise<Explanation> {
    const rules = await this.matchingRules(prefixesOf(destination));
    const excluded: Explanation['excluded'] = [];
    const candidates: MatchedRule[] = [];
    for (const rule of rules) {
      const reason = exclusionOf(rule, at);
      if (reason) excluded.push({ rule, reason });
      else candidates.push(rule);
    }
    const health = await this.health.statuses([...new Set(candidates.map((c) => c.operatorId))]);
    const ranks = rankCandidates(candidates).map((rank) => ({
      rank: rank.rank,
      prefixLength: rank.prefixLength,
      priority: rank.priority,
      groups: rank.groups.map((g) => ({
        currency: g.currency,
        costPerSegment: g.costPerSegment,
        candidates: g.members.map(({ candidate, share }) => {
          const now: HealthNow = health.get(candidate.operatorId) ?? 'UNKNOWN';
          return { rule: candidate, share, health: now, skippedNow: now !== 'UP' };
        }),
      })),
    }));
    excluded.sort((a, b) => compareExcluded(a.rule, b.rule));
    return { destination, at: at.toISOString(), ranks, excluded };
  }

  /**
   * Every live rule of a live operator (ONBOARDING and DRAINING included: explain says why they
   * are out) with one of `prefixes`, each with the longest it has.
   */
  private async matchingRules(prefixes: readonly string[]): Promise<MatchedRule[]> {
    const [hits, inline] = await Promise.all([findTableHits(this.deps.db, prefixes), this.rules.inlineRules()]);
    const tables = hits.size > 0 ? await this.rules.tables([...hits.keys()]) : new Map<string, never>();
    const found: Array<{ owned: OwnedRule; matchedPrefix: string; source: MatchedRule['source'] }> = [];
    // Each rule once: a rule moved between a table and inline prefixes can, until both parts
    // have been dropped, be in both.
    const seen = new Set<string>();
    const add = (owned: OwnedRule, matchedPrefix: string, source: MatchedRule['source']) => {
      if (seen.has(owned.rule.id)) return;
      seen.add(owned.rule.id);
      found.push({ owned, matchedPrefix, source });
    };
    for (const [tableId, matchedPrefix] of hits) {
      const table = tables.get(tableId);
      if (!table || table.name === null) continue; // a deleted table matches nothing
      const source = { kind: 'table' as const, prefixTableId: tableId, prefixTableName: table.name };
      for (const owned of table.rules) add(owned, matchedPrefix, source);
    }
    // Longest first (prefixesOf lists them shortest first): a rule listing several prefixes of
    // the number counts with the longest.
    for (let i = prefixes.length - 1; i >= 0; i--) {
      const prefix = prefixes[i] as string;
      for (const owned of inline.get(prefix) ?? []) add(owned, prefix, { kind: 'inline' });
    }
    const operators = await this.rules.operators([...new Set(found.map((f) => f.owned.operatorId))]);
    return found.flatMap(({ owned, matchedPrefix, source }) => {
      const operator = operators.get(owned.operatorId);
      if (!operator || operator.deleted || !isLive(operator.status)) return [];
      const matching = matchingRule({ id: owned.operatorId, status: operator.status }, owned.rule, matchedPrefix);
      return [Object.assign(matching, { operatorName: operator.name, source })];
    });
  }
}
