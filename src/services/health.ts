import type { Db } from '../clients/postgres';
import { recentHealth, type HealthLogEntry } from '../db/health-log';
import { findOperator } from '../db/operators';
import type { CachedHealth, HealthCache } from '../health/cache';
import { notFound } from './shared/errors';

export interface OperatorHealthState {
  /** The cached report and its remaining seconds; undefined when the key is gone ("unknown"). */
  cached: { health: CachedHealth; ttlS: number } | undefined;
  /** The latest logged reports, newest first. */
  history: HealthLogEntry[];
}

/** GET /operators/{id}/health: what the routing engine sees now, and what the log recorded. */
export class HealthService {
  constructor(private readonly deps: { db: Db; cache: HealthCache }) {}

  async read(operatorId: string, historyLimit: number): Promise<OperatorHealthState> {
    const { db, cache } = this.deps;
    if (!(await findOperator(db, operatorId))) throw notFound(`Operator ${operatorId}`);
    const [cached, history] = await Promise.all([cache.read(operatorId), recentHealth(db, operatorId, historyLimit)]);
    return { cached, history };
  }
}
