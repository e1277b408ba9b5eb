/** The Redis health cache (README "Health ingestion"), shared by its writer (health worker) and the drain. */

/** `ops:health:{operatorId}`: the latest report as JSON, `EX 60`; missing means unknown. */
export function healthKey(operatorId: string): string {
  return `ops:health:${operatorId}`;
}

export const HEALTH_TTL_S = 60;

/**
 * `ops:health-deleted:{operatorId}`: set when a deleted operator's health is forgotten, so that a
 * report already on its way cannot write the health key again. It outlives any report the
 * service still accepts (24 hours old at most, plus clock skew).
 */
export function healthTombstoneKey(operatorId: string): string {
  return `ops:health-deleted:${operatorId}`;
}

export const HEALTH_TOMBSTONE_TTL_S = 24 * 60 * 60 + 10 * 60;

/** `ops:health-outbox:{subject}`: the status changes not yet published, a Redis stream in write order. */
export function healthOutboxKey(subject: string): string {
  return `ops:health-outbox:${subject}`;
}

/**
 * Of a report held and one arriving, the one to hold: the one made later, whatever order they
 * arrive in (two ingestion batches in flight, or two replicas, can deliver them crossed). On the
 * same reportedAt, `onTie` keeps the order a workflow had before this rule: onboarding the last
 * to arrive, rotation the first.
 */
export function newestReport<R extends { reportedAt: string }>(
  held: R | undefined,
  arriving: R,
  onTie: 'first' | 'last',
): R {
  if (!held) return arriving;
  const [h, a] = [Date.parse(held.reportedAt), Date.parse(arriving.reportedAt)];
  return a > h || (a === h && onTie === 'last') ? arriving : held;
}
