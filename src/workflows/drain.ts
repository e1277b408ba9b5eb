import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineUpdate,
  isCancellation,
  setHandler,
} from '@temporalio/workflow';
import { drainVerdict, recordReport, type InstanceReports } from '../domain/drain';
import { CONFLICT } from '../domain/failures';
import type { Operator } from '../domain/operator';
import { connectorHealthSignal, defineSteps, type ConnectorHealth, type StepOf } from './messages';
import { events, steps, untilDone } from './proxies';
import {
  acceptOnFirstStep,
  bestEffort,
  drainCancelWhileAnnouncing,
  drainTimeoutAfterAnnounce,
  failedDrainRestores,
  failureReason,
  handlersDone,
  trackSteps,
} from './shared';

export interface DrainInput {
  operatorId: string;
  actor: string;
  drainTimeoutS: number;
  /** An instance that reported within this many seconds is one the drain waits for (DRAIN_INSTANCE_WINDOW_S). */
  instanceWindowS: number;
}

export interface DrainResult {
  operatorId: string;
  outcome: 'DELETED' | 'CANCELLED';
  /** Why the soft delete happened: the connector drained, or the timeout ran out. */
  reason: 'drained' | 'timeout' | 'cancelled';
}

/** The drain's steps, in order, with the words the Temporal UI shows for each. */
export const drainSteps = defineSteps({
  markingDraining: 'marking the operator DRAINING',
  waitingForEmpty: 'waiting for every connector instance to report nothing in flight',
  softDeleting: 'soft-deleting',
  deleted: 'done: DELETED',
  cancelling: 'cancelling the drain: back to ACTIVE',
  cancelled: 'done: drain cancelled, ACTIVE',
  failed: 'failed',
});
export type DrainStep = StepOf<typeof drainSteps>;

/**
 * Stops a drain before its soft delete and answers with the operator ACTIVE again; rejected
 * (by its validator, so nothing enters the history) once the soft delete has begun.
 */
export const cancelDrainUpdate = defineUpdate<Operator, [{ actor: string }]>('cancelDrain');

/**
 * Drain, the soft delete (README "Drain (soft delete), step by step"): DRAINING, announce, wait
 * until every connector instance reports nothing in flight (the rule of src/domain/drain.ts) or
 * the drain timeout, then soft-delete, announce and forget the health entry. Until the soft
 * delete begins, the cancelDrain update (or a Temporal cancel) puts the operator back to ACTIVE.
 */
export async function drainOperator(input: DrainInput): Promise<DrainResult> {
  const { operatorId } = input;
  const reports: InstanceReports = new Map();
  let reportsSeen = 0;
  let cancelledBy: string | undefined;
  let restored: Operator | undefined;
  let deleting = false;
  const at = trackSteps(drainSteps, 'markingDraining');
  const acceptance = acceptOnFirstStep();

  setHandler(connectorHealthSignal, (health: ConnectorHealth) => {
    recordReport(reports, health.connectorInstance, {
      inflight: health.inflight,
      reportedAtMs: Date.parse(health.reportedAt),
    });
    reportsSeen++;
  });
  setHandler(
    cancelDrainUpdate,
    async ({ actor }) => {
      cancelledBy ??= actor;
      await condition(() => restored !== undefined || acceptance.refusal !== undefined);
      if (!restored) throw acceptance.refusal as ApplicationFailure;
      return restored;
    },
    {
      validator: ({ actor }) => {
        if (!actor) throw new Error('a cancel names who asked for it');
        if (deleting) {
          throw ApplicationFailure.nonRetryable(
            'the drain has begun the soft delete and can no longer be cancelled',
            CONFLICT,
          );
        }
      },
    },
  );

  let began = false;
  try {
    at('markingDraining');
    await acceptance.first(() => steps.beginDrain(operatorId, input.actor));
    began = true;

    // After DRAINING is committed: a report stamped before this instant never counts.
    const beganAtMs = Date.now();
    const recent = await steps.recentConnectorReports(operatorId, input.instanceWindowS);
    for (const r of recent) {
      recordReport(reports, r.connectorInstance, { inflight: r.inflight, reportedAtMs: Date.parse(r.reportedAt) });
    }
    if (drainCancelWhileAnnouncing()) {
      // A NATS outage holds the announce: a cancel meanwhile gives it up and restores at once
      // (the restore's own event goes out once NATS is back), rather than waiting for NATS.
      const announce = new CancellationScope();
      const announced = announce.run(() => events.publishPendingEvents());
      await Promise.race([announced, condition(() => cancelledBy !== undefined)]);
      if (cancelledBy !== undefined) {
        announce.cancel();
        await announced.catch(() => undefined);
        return await restore(cancelledBy);
      }
    } else {
      await events.publishPendingEvents();
    }
    // SPEC 5 (publish `draining`, wait … or a drain timeout): the timeout runs from when `draining` is out, not from the commit: a NATS outage
    // longer than the timeout would otherwise end the drain the moment it was announced.
    const waitFromMs = drainTimeoutAfterAnnounce() ? Date.now() : beganAtMs;

    at('waitingForEmpty', `up to ${input.drainTimeoutS}s`);
    const drained = await untilDrained(beganAtMs, waitFromMs + input.drainTimeoutS * 1000);
    if (cancelledBy !== undefined) return await restore(cancelledBy);

    deleting = true;
    at('softDeleting', drained ? 'drained' : 'drain timeout');
    // Past the point of no return: a cancel now must not leave the operator DRAINING for good.
    await CancellationScope.nonCancellable(async () => {
      await untilDone.finishDrain(operatorId, input.actor, drained ? 'drained' : 'timeout');
      await untilDone.forgetHealth(operatorId);
      await events.publishPendingEvents();
    });
    at('deleted', drained ? 'drained' : 'drain timeout');
    await handlersDone();
    return { operatorId, outcome: 'DELETED', reason: drained ? 'drained' : 'timeout' };
  } catch (err) {
    // A Temporal cancel (ops) before the soft delete is a cancelled drain, like the API's.
    // beginDrain may have committed even if its answer was lost: cancelDrain is a no-op otherwise.
    if (isCancellation(err) && !deleting) {
      await CancellationScope.nonCancellable(() => restore(cancelledBy ?? 'system:temporal-cancel'));
      throw err;
    }
    // A step out of its retries after DRAINING was committed (PostgreSQL down for minutes, say;
    // beginDrain itself, its commit's answer lost) would leave the operator DRAINING with no
    // workflow: nothing could end or cancel the drain, and no traffic goes to it. Back to ACTIVE,
    // as a cancel would (cancelDrain changes nothing unless the operator is DRAINING, and no
    // other run drains it); the drain still fails. Once the drain had begun, before the refusal:
    // a cancel asked meanwhile is answered with the operator restored, in its actor's name.
    const restoring = !deleting && failedDrainRestores();
    if (restoring && began) await restoreAfterFailure(true);
    acceptance.refuse(err);
    at('failed', failureReason(err));
    // Not for beginDrain's refusal (the operator cannot drain: it was never made DRAINING here).
    if (restoring && !began && !isRefusal(err)) await restoreAfterFailure(false);
    await handlersDone();
    throw err;
  }

  /** An activity's own non-retryable answer, as a lifecycle refusal is; not retries run out. */
  function isRefusal(err: unknown): boolean {
    return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.nonRetryable === true;
  }

  /** Never in place of the failure that ends the run: a refused cancelDrain is logged. */
  async function restoreAfterFailure(answersCancels: boolean): Promise<void> {
    await CancellationScope.nonCancellable(() =>
      bestEffort('put the operator back to ACTIVE after a failed drain', operatorId, async () => {
        const operator = await untilDone.cancelDrain(operatorId, cancelledBy ?? 'system:drain-failed');
        if (answersCancels) restored = operator;
        await events.publishPendingEvents();
      }),
    );
  }

  /**
   * Waits for the drain rule to hold, re-judging on every report and whenever an instance leaves
   * the window; false when the deadline or a cancel comes first.
   */
  async function untilDrained(beganAtMs: number, deadlineMs: number): Promise<boolean> {
    for (;;) {
      const verdict = drainVerdict(reports, { beganAtMs, nowMs: Date.now(), windowMs: input.instanceWindowS * 1000 });
      if (verdict.drained) return true;
      const wakeAtMs = Math.min(deadlineMs, verdict.changesAtMs ?? deadlineMs);
      if (Date.now() >= deadlineMs || cancelledBy !== undefined) return false;
      const seen = reportsSeen;
      await condition(() => reportsSeen !== seen || cancelledBy !== undefined, Math.max(1, wakeAtMs - Date.now()));
    }
  }

  async function restore(actor: string): Promise<DrainResult> {
    at('cancelling');
    restored = await untilDone.cancelDrain(operatorId, actor);
    await events.publishPendingEvents();
    at('cancelled');
    await handlersDone();
    return { operatorId, outcome: 'CANCELLED', reason: 'cancelled' };
  }
}
