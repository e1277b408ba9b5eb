import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { withinDeadline } from '../clients/temporal';
import type { HealthTarget } from '../db/health-log';
import { workflowIds } from '../domain/workflow-ids';
import { connectorHealthSignal, type ConnectorHealth } from '../workflows/messages';
import type { ValidReport } from './report';

/** Which waiting workflow a report concerns (README "Health ingestion"), decided from the operator's row. */

export interface HealthSignal {
  workflowId: string;
  health: ConnectorHealth;
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
