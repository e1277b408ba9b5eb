import { HEALTH_ACTOR } from '../db/health-log';
import { HEALTH_SUBJECT } from '../events/envelope';
import type { HealthReport } from './report';

/**
 * The pieces of an `operator.health` event (docs/asyncapi.yaml, `HealthChangedData` in
 * src/events/catalog.ts) that the cache's script (src/health/cache.ts) joins, for a status change
 * only: the envelope around `data`, which is the report without its operator id plus the status
 * it replaced, known only inside the script. The script's part is not typed: test/health-cache.test.ts
 * checks what it writes against the catalog.
 */

export const EVENT_TYPE_JSON = JSON.stringify(HEALTH_SUBJECT);
export const ACTOR_JSON = JSON.stringify(HEALTH_ACTOR);

/**
 * The members the event's `data` and the cached report share, as JSON without its braces, in the
 * order both are written.
 */
export function sharedMembers(report: HealthReport): string {
  const json = JSON.stringify({
    status: report.status,
    boundSessions: report.boundSessions,
    inflight: report.inflight,
    credentialsVersion: report.credentialsVersion,
    reportedAt: report.reportedAt,
    connectorInstance: report.connectorInstance,
  } satisfies Omit<HealthReport, 'operatorId'>);
  return json.slice(1, -1);
}
