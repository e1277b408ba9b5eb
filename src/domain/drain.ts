/**
 * When a drain may soft-delete (README "Drain (soft delete), step by step"): only once every
 * connector instance that reported for the operator within the recent window has reported
 * `inflight = 0` in a report stamped after the drain began. A report from before the drain
 * never counts (the connector then still sent traffic), and one instance at 0 says nothing
 * about another that still has messages in flight. An instance silent for longer than the window
 * is gone and no longer waited for; with no instance left at all, the drain waits for a report
 * (or its timeout) rather than deleting an operator nobody has spoken for.
 */

export interface InstanceReport {
  inflight: number;
  reportedAtMs: number;
}

/** Each connector instance's newest report: an older one arriving late changes nothing. */
export type InstanceReports = Map<string, InstanceReport>;

export function recordReport(reports: InstanceReports, instance: string, report: InstanceReport): void {
  const held = reports.get(instance);
  if (!held || report.reportedAtMs >= held.reportedAtMs) reports.set(instance, report);
}

export interface DrainVerdict {
  drained: boolean;
  /** The instances still in the window that have not reported 0 since the drain began. */
  waitingFor: string[];
  /** When the verdict can change with no new report: the next instance leaving the window. */
  changesAtMs: number | undefined;
}

export function drainVerdict(
  reports: InstanceReports,
  { beganAtMs, nowMs, windowMs }: { beganAtMs: number; nowMs: number; windowMs: number },
): DrainVerdict {
  const recent = [...reports].filter(([, r]) => r.reportedAtMs >= nowMs - windowMs);
  const waitingFor = recent
    .filter(([, r]) => !(r.reportedAtMs > beganAtMs && r.inflight === 0))
    .map(([instance]) => instance)
    .sort();
  const expiries = recent.map(([, r]) => r.reportedAtMs + windowMs + 1);
  return {
    drained: recent.length > 0 && waitingFor.length === 0,
    waitingFor,
    changesAtMs: expiries.length > 0 ? Math.min(...expiries) : undefined,
  };
}
