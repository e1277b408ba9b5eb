import { z } from 'zod';
import { HEALTH_STATUSES } from '../domain/operator';

/** The connector's health report (`ConnectorHealthReport` in docs/asyncapi.yaml), on `connector.health.<operatorId>` or POSTed. */
// Bounded to what the log's columns hold: a report PostgreSQL refuses would fail its batch forever.
const int4 = z.number().int().max(2_147_483_647);

export const HealthReportSchema = z.object({
  operatorId: z.uuid(),
  status: z.enum(HEALTH_STATUSES),
  boundSessions: int4.min(0),
  inflight: int4.min(0),
  credentialsVersion: int4.positive().nullable(),
  reportedAt: z.iso.datetime({ offset: true }),
  connectorInstance: z
    .string()
    .min(1)
    .max(200)
    // eslint-disable-next-line no-control-regex -- PostgreSQL text refuses NUL; logs hate the rest
    .regex(/^[^\u0000-\u001f]+$/, 'printable characters only'),
});
// Unknown fields are stripped (z.object's default): a newer connector may send more.

export type HealthReport = z.infer<typeof HealthReportSchema>;

/** A report and the instant it describes, in epoch milliseconds (the cache compares those). */
export interface ValidReport {
  report: HealthReport;
  reportedAtMs: number;
}

export interface FieldProblem {
  field: string;
  message: string;
}

export type RejectReason =
  | 'invalid_json'
  | 'invalid_report'
  | 'subject'
  | 'operator_id_mismatch'
  | 'reported_at_in_future'
  | 'reported_at_too_old'
  | 'unknown_operator'
  /** Failed on its own, with every dependency up, HEALTH_MAX_DELIVERIES times. */
  | 'failed_repeatedly';

export type Validation = { ok: true; valid: ValidReport } | { ok: false; reason: RejectReason; errors: FieldProblem[] };

/**
 * Partitions of the health log exist from today on, and a row far in the future would sit in
 * the default partition and block the day's partition from being created; a far-future report
 * would also hold the cache against every real one. Connector clocks are NTP-synced.
 */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;
/** Older reports say nothing about now; they would land in the default partition forever. */
export const MAX_REPORT_AGE_MS = 24 * 60 * 60_000;

/**
 * Validates one report against the operator id its subject or path names. Error messages name
 * fields and rules only, never the values sent.
 */
export function validateReport(payload: unknown, expectedOperatorId: string, now = Date.now()): Validation {
  const parsed = HealthReportSchema.safeParse(payload);
  if (!parsed.success) {
    const errors = parsed.error.issues.map((issue) => ({
      field: issue.path.map(String).join('.') || 'body',
      message: issue.message,
    }));
    return { ok: false, reason: 'invalid_report', errors };
  }
  const report = { ...parsed.data, operatorId: parsed.data.operatorId.toLowerCase() };
  if (report.operatorId !== expectedOperatorId.toLowerCase()) {
    return {
      ok: false,
      reason: 'operator_id_mismatch',
      errors: [{ field: 'operatorId', message: 'must equal the operator id of the subject or path' }],
    };
  }
  const reportedAtMs = Date.parse(report.reportedAt);
  if (reportedAtMs > now + MAX_CLOCK_SKEW_MS) {
    return {
      ok: false,
      reason: 'reported_at_in_future',
      errors: [{ field: 'reportedAt', message: 'more than 5 minutes ahead of the service clock' }],
    };
  }
  if (reportedAtMs < now - MAX_REPORT_AGE_MS) {
    return {
      ok: false,
      reason: 'reported_at_too_old',
      errors: [{ field: 'reportedAt', message: 'more than 24 hours old' }],
    };
  }
  // One canonical spelling, so a redelivery and the cache compare equal strings.
  return { ok: true, valid: { report: { ...report, reportedAt: new Date(reportedAtMs).toISOString() }, reportedAtMs } };
}

/** `connector.health.<operatorId>` → the id; anything else (more or fewer tokens) → undefined. */
export function operatorIdOfSubject(subject: string, prefix: string): string | undefined {
  if (!subject.startsWith(`${prefix}.`)) return undefined;
  const rest = subject.slice(prefix.length + 1);
  return rest.length > 0 && !rest.includes('.') ? rest : undefined;
}
