import type { Db } from '../clients/postgres';
import { findMatchingRules, type ExplainedRule } from '../db/routing-explain';
import type { HealthStatus } from '../domain/operator';
import { compareExcluded, exclusionOf, prefixesOf, rankCandidates, type ExclusionReason } from '../domain/route-order';
import type { HealthCache } from '../health/cache';

/**
 * GET /routing/explain: what a number would match at a time, in the route order of
 * src/domain/route-order.ts, with each candidate's health now and the reason of every rule out.
 */

export type { ExplainedRule as MatchedRule };

export type HealthNow = HealthStatus | 'UNKNOWN';

export interface ExplainedCandidate {
  rule: ExplainedRule;
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
  excluded: Array<{ rule: ExplainedRule; reason: ExclusionReason }>;
}

export class RoutingExplainService {
  constructor(private readonly deps: { db: Db; cache: HealthCache }) {}

  async explain(destination: string, at: Date): Promise<Explanation> {
    const rules = await findMatchingRules(this.deps.db, prefixesOf(destination));
    const excluded: Explanation['excluded'] = [];
    const candidates: ExplainedRule[] = [];
    for (const rule of rules) {
      const reason = exclusionOf(rule, at);
      if (reason) excluded.push({ rule, reason });
      else candidates.push(rule);
    }
    const health = await this.deps.cache.statuses([...new Set(candidates.map((c) => c.operatorId))]);
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
}
