import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  setHandler,
} from '@temporalio/workflow';
import { events, failureReason, steps, handlersDone, trackSteps, untilDone } from './shared';
import { CONFLICT } from '../domain/failures';
import type { Operator } from '../domain/operator';
import { cancelDrainUpdate, connectorHealthSignal, drainStartedUpdate, type ConnectorHealth } from './messages';

export interface DrainInput {
  operatorId: string;
  actor: string;
  drainTimeoutS: number;
}

export interface DrainResult {
  operatorId: string;
  outcome: 'DELETED' | 'CANCELLED';
  /** Why the soft delete happened: the connector drained, or the timeout ran out. */
  reason: 'drained' | 'timeout' | 'cancelled';
}

/**
 * SPEC §5 drain (soft delete): DRAINING, announce, wait for the connector to report nothing in
 * flight (or the drain timeout), then soft-delete, announce and forget the health entry. Until
 * the soft delete begins, the cancelDrain update (or a Temporal cancel) puts the operator back
 * to ACTIVE instead.
 */
export async function drainOperator(input: DrainInput): Promise<DrainResult> {
  const { operatorId } = input;
  let draining: Operator | undefined;
  let refused: ApplicationFailure | undefined;
  let lastHealth: ConnectorHealth | undefined;
  let cancelledBy: string | undefined;
  let restored: Operator | undefined;
  let deleting = false;
  const at = trackSteps('marking DRAINING');

  setHandler(drainStartedUpdate, async () => {
    await condition(() => draining !== undefined || refused !== undefined);
    if (refused) throw refused;
    return draining as Operator;
  });
  setHandler(connectorHealthSignal, (health) => {
    lastHealth = health;
  });
  setHandler(
    cancelDrainUpdate,
    async ({ actor }) => {
      cancelledBy ??= actor;
      await condition(() => restored !== undefined || refused !== undefined);
      if (!restored) throw refused as ApplicationFailure;
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

  try {
    at('marking DRAINING');
    try {
      draining = await steps.beginDrain(operatorId, input.actor);
    } catch (err) {
      refused =
        err instanceof ActivityFailure && err.cause instanceof ApplicationFailure
          ? err.cause
          : ApplicationFailure.nonRetryable(failureReason(err));
      throw err;
    }
    await events.publishPendingEvents();

    at(`waiting up to ${input.drainTimeoutS}s for the connector to report nothing in flight`);
    const drained = await condition(
      () => lastHealth?.inflight === 0 || cancelledBy !== undefined,
      `${input.drainTimeoutS}s`,
    );
    if (cancelledBy !== undefined) return await restore(cancelledBy);

    deleting = true;
    at('soft-deleting');
    // Past the point of no return: a cancel now must not leave the operator DRAINING for good.
    await CancellationScope.nonCancellable(async () => {
      await untilDone.finishDrain(operatorId, input.actor, drained ? 'drained' : 'timeout');
      await untilDone.forgetHealth(operatorId);
      await events.publishPendingEvents();
    });
    at(`done: DELETED (${drained ? 'drained' : 'drain timeout'})`);
    await handlersDone();
    return { operatorId, outcome: 'DELETED', reason: drained ? 'drained' : 'timeout' };
  } catch (err) {
    // A Temporal cancel (ops) before the soft delete is a cancelled drain, like the API's.
    // beginDrain may have committed even if its answer was lost: cancelDrain is a no-op otherwise.
    if (isCancellation(err) && !deleting) {
      await CancellationScope.nonCancellable(() => restore(cancelledBy ?? 'system:temporal-cancel'));
      throw err;
    }
    refused ??= ApplicationFailure.nonRetryable(failureReason(err));
    at(`failed: ${failureReason(err)}`);
    await handlersDone();
    throw err;
  }

  async function restore(actor: string): Promise<DrainResult> {
    at('cancelling the drain: back to ACTIVE');
    restored = await untilDone.cancelDrain(operatorId, actor);
    await events.publishPendingEvents();
    at('done: drain cancelled, ACTIVE');
    await handlersDone();
    return { operatorId, outcome: 'CANCELLED', reason: 'cancelled' };
  }
}
