import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { withinDeadline } from '../clients/temporal';
import type { HealthTarget } from '../db/health-log';
import { workflowIds } from '../domain/workflow-ids';
import { connectorHealthSignal, type ConnectorHealth } from '../workflows/messages';
import type { ValidReport } from './report';

const DRAIN_ID_PREFIX = workflowIds.drain('');

/** Which waiting workflow a report concerns (README "Health ingestion"), decided from the operator's row. */

export interface HealthSignal {
  workflowId: string;
  health: ConnectorHealth;
  /** For a drain: when its operator's row last changed (the drain began then or before); not sent. */
  drainSinceMs?: number;
}

function waitingWorkflowIds(report: ValidReport['report'], target: HealthTarget): string[] {
  const ids: string[] = [];
  // AUTH_FAILED too: onboarding then fails at once instead of waiting out its bind timeout.
  if (target.status === 'ONBOARDING' && (report.status === 'UP' || report.status === 'AUTH_FAILED')) {
    ids.push(workflowIds.onboarding(target.id));
  }
  if (
    target.pendingCredentialsVersion !== null &&
    report.credentialsVersion === target.pendingCredentialsVersion &&
    (report.status === 'UP' || report.status === 'AUTH_FAILED')
  ) {
    ids.push(workflowIds.rotation(target.id));
  }
  // Every report, busy or not: the drain waits for each instance's own report of 0.
  if (target.status === 'DRAINING') ids.push(workflowIds.drain(target.id));
  return ids;
}

/**
 * At most one signal per workflow and connector instance per batch: the newest report of that
 * instance (reports come sorted by reportedAt). Sending every matching report would only repeat
 * what the workflow knows.
 */
export function signalsFor(
  reports: readonly ValidReport[],
  targets: ReadonlyMap<string, HealthTarget>,
): HealthSignal[] {
  const byWorkflow = new Map<string, HealthSignal>();
  for (const { report } of reports) {
    const target = targets.get(report.operatorId);
    if (!target) continue;
    for (const workflowId of waitingWorkflowIds(report, target)) {
      byWorkflow.set(`${workflowId}|${report.connectorInstance}`, {
        workflowId,
        ...(workflowId.startsWith(DRAIN_ID_PREFIX) && target.changedAtMs !== undefined
          ? { drainSinceMs: target.changedAtMs }
          : {}),
        health: {
          status: report.status,
          credentialsVersion: report.credentialsVersion,
          inflight: report.inflight,
          reportedAt: report.reportedAt,
          connectorInstance: report.connectorInstance,
        },
      });
    }
  }
  return [...byWorkflow.values()];
}

/**
 * Keeps a drain's history small: every signal is six events in it, and a busy operator's
 * connectors report every few seconds, each instance, for the whole drain (Temporal ends a run at
 * 51,200 events, and a run ended so would leave the operator DRAINING). A report goes to the
 * drain when it can change the verdict (README "Draining"): an instance's first, any whose
 * inflight turns to or from 0, and otherwise one per instance per `everyMs` (at most half the
 * instance window, so a busy instance never looks gone; 0 after 0 waits too). Decided per
 * process, each replica on the reports it sees: a second one only doubles the rate, and an
 * instance busy again after a 0 another replica sent is heard within `everyMs` (during a drain
 * its connector sends nothing new, so that is an anomaly; the drain ends at its first all-0
 * verdict either way).
 */
export class DrainSignalThrottle {
  private readonly last = new Map<string, { inflightZero: boolean; atMs: number }>();

  constructor(private readonly everyMs: number) {}

  /**
   * The signals to send, each drain signal taken as sent at once: a batch in flight beside this
   * one is judged against it (judged against the last confirmed one, a busy report could be held
   * back behind a 0 still being sent). `unsent` takes back those of a failed batch.
   */
  keep(signals: readonly HealthSignal[]): HealthSignal[] {
    // Forgotten after a few windows: an instance quiet that long has left every drain's window.
    if (this.last.size > 10_000) {
      const horizon = Date.now() - 8 * this.everyMs;
      for (const [key, { atMs }] of this.last) if (atMs < horizon) this.last.delete(key);
    }
    return signals.filter((signal) => {
      if (!signal.workflowId.startsWith(DRAIN_ID_PREFIX)) return true;
      const key = keyOf(signal);
      const before = this.last.get(key);
      const zero = signal.health.inflight === 0;
      const atMs = Date.parse(signal.health.reportedAt);
      // A 0 from before this drain began (one a drain of the same operator got, or one handled
      // late) says nothing to this one: the first 0 after the operator's last change goes at
      // once (a change during the drain only lets one more through).
      const since = signal.drainSinceMs;
      const firstZeroOfDrain =
        zero && since !== undefined && before !== undefined && before.atMs < since && atMs >= since;
      const passes = !before || before.inflightZero !== zero || atMs - before.atMs >= this.everyMs || firstZeroOfDrain;
      // Batches in flight together may pass an older report after a newer one: the drain keeps
      // the newer, and so does this (the next change is judged against what the drain holds).
      if (passes && (before?.atMs ?? -Infinity) <= atMs) this.last.set(key, { inflightZero: zero, atMs });
      return passes;
    });
  }

  /** A batch's signals were not sent: its instances' next reports pass as if they were their first. */
  unsent(signals: readonly HealthSignal[]): void {
    for (const signal of signals) if (signal.workflowId.startsWith(DRAIN_ID_PREFIX)) this.last.delete(keyOf(signal));
  }
}

function keyOf(signal: HealthSignal): string {
  return `${signal.workflowId}|${signal.health.connectorInstance}`;
}

/** A Temporal that does not take a signal in this time fails the batch, which is retried. */
const SIGNAL_TIMEOUT_MS = 5_000;

/**
 * Sends the signals. A workflow that is gone (finished, or never started) no longer waits: that
 * is not an error. Anything else is, so the batch is retried.
 */
export async function sendSignals(temporal: Client, signals: readonly HealthSignal[]): Promise<number> {
  const sent = await Promise.all(
    signals.map(async ({ workflowId, health }) => {
      try {
        await withinDeadline(temporal, SIGNAL_TIMEOUT_MS, () =>
          temporal.workflow.getHandle(workflowId).signal(connectorHealthSignal, health),
        );
        return 1;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return 0;
        throw err;
      }
    }),
  );
  return sent.reduce<number>((a, b) => a + b, 0);
}
