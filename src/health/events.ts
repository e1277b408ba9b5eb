import { createHash } from 'node:crypto';
import { HEALTH_SUBJECT, type EventEnvelope } from '../events/envelope';
import type { z } from 'zod';
import type { HealthChangedData as HealthChangedDataSchema } from '../events/catalog';
import { HEALTH_ACTOR } from '../db/health-log';
import type { HealthReport } from './report';

export type HealthChangedData = z.infer<typeof HealthChangedDataSchema>;

/**
 * A UUID (version 8, RFC 9562 "custom") from the report's identity: a redelivered report yields
 * the same eventId, which JetStream's duplicate window drops.
 */
export function healthEventId(report: HealthReport): string {
  const hash = createHash('sha256')
    .update(`operator.health|${report.operatorId}|${report.connectorInstance}|${report.reportedAt}`)
    .digest();
  const b = hash.subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The envelope (docs/asyncapi.yaml) of a status change, as JSON in two parts around the value of
 * `data.previousStatus`: the status it replaced is known only inside the cache's write
 * (src/health/cache.ts), which joins `head`, that status as JSON and `tail`. `version` is the
 * operator's config version.
 */
export function encodedHealthEvent(
  report: HealthReport,
  configVersion: number,
): { eventId: string; head: string; tail: string } {
  const event: Omit<EventEnvelope<HealthChangedData>, 'data'> & { data: Omit<HealthChangedData, 'previousStatus'> } = {
    eventId: healthEventId(report),
    type: HEALTH_SUBJECT,
    operatorId: report.operatorId,
    version: configVersion,
    occurredAt: report.reportedAt,
    actor: HEALTH_ACTOR,
    data: {
      status: report.status,
      boundSessions: report.boundSessions,
      inflight: report.inflight,
      credentialsVersion: report.credentialsVersion,
      reportedAt: report.reportedAt,
      connectorInstance: report.connectorInstance,
    },
  };
  // `data` is the last member and ends the object: "…}}" → "…,"previousStatus":" + status + "}}".
  const json = JSON.stringify(event);
  return { eventId: event.eventId, head: `${json.slice(0, -2)},"previousStatus":`, tail: '}}' };
}
