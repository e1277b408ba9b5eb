import { randomUUID } from 'node:crypto';
import {
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
  type Client,
  type Workflow,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../../clients/postgres';
import type { KvStore } from '../../clients/vault';
import type { Config } from '../../platform/config';
import type { Logger } from '../../platform/logger';
import { currentRequestId } from '../../platform/request-context';
import type { WorkflowStartCounter } from '../../platform/workflow-metrics';
import { CONFLICT, DUPLICATE_OPERATOR, EVENT_TOO_LARGE, NOT_FOUND, UNPROCESSABLE } from '../../domain/failures';
import type { Operator } from '../../domain/operator';
import { OPERATOR_ID } from '../../domain/workflow-ids';
import { acceptedUpdate } from '../../workflows/messages';
import { runningRun } from '../../clients/temporal';
import {
  conflict,
  duplicateOperator,
  notFound,
  ServiceError,
  unavailable,
  unprocessable,
  type FieldError,
} from './errors';

/**
 * How the API starts every workflow: update-with-start of the workflow's `accepted` update, so
 * the answer shows what the first step committed and its refusal is a synchronous 4xx. One error
 * mapping for all: a refusal by type, a second start for the same purpose (409), no worker in
 * time, Temporal down (503).
 */

export interface WorkflowStartDeps {
  temporal: Client;
  config: Config['temporal'];
  log: Logger;
  /** Counts each start by type and outcome (src/platform/workflow-metrics.ts). */
  workflowStarts?: WorkflowStartCounter;
}

/** What a service that stages a password and starts a workflow is built from. */
export interface WorkflowServiceDeps extends WorkflowStartDeps {
  db: Db;
  kv: KvStore;
}

export interface WorkflowStart<W extends Workflow> {
  /** In messages: "onboarding", "credential rotation", "drain". */
  what: string;
  workflowType: string;
  workflowId: string;
  operatorId: string;
  args: Parameters<W>;
  /**
   * No worker answered within ONBOARDING_ACCEPT_TIMEOUT_MS: `cancel` the workflow and answer
   * 503, or leave it queued for a worker and answer with the operator as it still is.
   */
  whenNoWorker: 'cancel' | { queue: Operator };
  /** The workflow certainly did not start: undo what the request prepared for it (a staged secret). */
  discard?: () => Promise<void>;
}

export interface WorkflowStarted {
  /** As the first step left it, or as it still is when the workflow waits for a worker. */
  operator: Operator;
  workflowId: string;
  runId: string | null;
  workflowUrl: string;
}

export async function startWorkflow<W extends Workflow>(
  deps: WorkflowStartDeps,
  spec: WorkflowStart<W>,
): Promise<WorkflowStarted> {
  try {
    const started = await startOnce(deps, spec);
    deps.workflowStarts?.count(spec.workflowType, 'started');
    return started;
  } catch (err) {
    deps.workflowStarts?.count(spec.workflowType, err instanceof ServiceError ? err.kind : 'error');
    throw err;
  }
}

async function startOnce<W extends Workflow>(
  deps: WorkflowStartDeps,
  spec: WorkflowStart<W>,
): Promise<WorkflowStarted> {
  const { temporal, config, log } = deps;
  const { what, workflowId, operatorId } = spec;
  const requestId = currentRequestId();
  // Made here, once per start: the run found after a lost answer is this start's only if it
  // carries it (a request id is the caller's, and callers reuse them).
  const startId = randomUUID();
  // Typed at the caller (`args: Parameters<W>`); the SDK's conditional args type needs a concrete workflow.
  const start = new WithStartWorkflowOperation<Workflow>(spec.workflowType, {
    workflowId,
    taskQueue: config.taskQueue,
    workflowIdConflictPolicy: 'FAIL',
    typedSearchAttributes: [{ key: OPERATOR_ID, value: operatorId }],
    // The request that started it: shown in the Temporal UI, carried to its activities' logs.
    memo: requestId === undefined ? { startId } : { requestId, startId },
    args: spec.args,
  });
  const started = (operator: Operator, runId: string | null): WorkflowStarted => ({
    operator,
    workflowId,
    runId,
    workflowUrl: workflowUrl(config, temporal, workflowId, runId ?? undefined),
  });
  try {
    // Bounded: with no worker polling, the update would otherwise hold the request open.
    return await temporal.withDeadline(Date.now() + config.onboardingAcceptTimeoutMs, async () => {
      const update = await temporal.workflow.startUpdateWithStart(acceptedUpdate, {
        startWorkflowOperation: start,
        waitForStage: WorkflowUpdateStage.ACCEPTED,
      });
      return started(await update.result(), update.workflowRunId ?? null);
    });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
      // The workflow undoes its own preparations when its first step refuses.
      throw refusal(what, operatorId, err.cause);
    }
    const alreadyRunning = async () => {
      // The running one has its own preparations; this request's are nobody's.
      await discardQuietly(spec, log, operatorId);
      return conflict(`A ${what} of operator ${operatorId} is already running: ${workflowId}.`, {
        workflowId,
        workflowUrl: workflowUrl(config, temporal, workflowId),
      });
    };
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw await alreadyRunning();
    // A timed-out update-with-start does not say whether the start happened: ask the server.
    const running = await runningRun(temporal, workflowId).catch(() => undefined);
    if (running === undefined) {
      // Whether the workflow exists is unknown: what it would own stays for it or the sweep.
      throw unavailable('Temporal', `Temporal did not confirm the ${what}; retry later.`, { operatorId, workflowId });
    }
    if (running === null) {
      await discardQuietly(spec, log, operatorId);
      throw unavailable('Temporal', `Temporal did not start the ${what}; retry later.`, { operatorId, workflowId });
    }
    // Another start's run: this one was refused as a duplicate whose answer was lost. Neither
    // adopted (its preparations are not this request's) nor cancelled.
    if (running.startId !== startId) throw await alreadyRunning();
    const runId = running.runId;
    if (spec.whenNoWorker !== 'cancel') {
      log.warn({ operatorId, workflowId }, `${what} accepted; no worker has run its first step yet`);
      return started(spec.whenNoWorker.queue, runId);
    }
    // Started but not accepted in time: cancel it; its compensation undoes its preparations
    // whenever a worker picks it up, so the 503 leaves nothing behind.
    await temporal.workflow
      .getHandle(workflowId)
      .cancel()
      .catch((e: unknown) => log.warn({ err: (e as Error).message, workflowId }, `${what}: cancel failed`));
    log.warn({ operatorId, workflowId }, `${what} not accepted in time; cancelled`);
    throw unavailable(
      'Temporal',
      `No worker took the ${what} within ${config.onboardingAcceptTimeoutMs} ms; it was cancelled. Retry later.`,
      { operatorId, workflowId },
    );
  }
}

/** Undoes what the request prepared for a workflow that certainly did not start; logs a failure. */
async function discardQuietly(spec: WorkflowStart<Workflow>, log: Logger, operatorId: string): Promise<void> {
  await spec
    .discard?.()
    .catch((e: unknown) => log.error({ err: (e as Error).message, operatorId }, `${spec.what}: clean-up failed`));
}

/** Sends an update to a running workflow within the accept timeout, with the same error mapping. */
export async function updateWorkflow<Ret>(
  deps: WorkflowStartDeps,
  spec: { what: string; workflowId: string; operatorId: string },
  send: () => Promise<Ret>,
): Promise<Ret> {
  const { temporal, config } = deps;
  const { what, operatorId } = spec;
  try {
    return await temporal.withDeadline(Date.now() + config.onboardingAcceptTimeoutMs, send);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError || isClosedWorkflow(err)) {
      throw conflict(`No ${what} of operator ${operatorId} is running.`);
    }
    if (err instanceof WorkflowUpdateFailedError) {
      if (err.cause instanceof ApplicationFailure) throw refusal(what, operatorId, err.cause);
      throw conflict(`The ${what} of operator ${operatorId} refused: ${err.cause?.message ?? err.message}`);
    }
    throw unavailable('Temporal', `The ${what} of operator ${operatorId} did not answer in time; retry.`);
  }
}

/** A workflow's page in the Temporal UI (a run's history when the run is known). */
export function workflowUrl(config: Config['temporal'], temporal: Client, workflowId: string, runId?: string): string {
  const base = `${config.uiUrl}/namespaces/${encodeURIComponent(temporal.options.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${base}/${runId}/history` : base;
}

function refusal(what: string, operatorId: string, failure: ApplicationFailure): ServiceError {
  switch (failure.type) {
    case DUPLICATE_OPERATOR: {
      const details = failure.details?.[0] as { existingOperatorId?: string } | undefined;
      return duplicateOperator(details?.existingOperatorId ?? null);
    }
    case NOT_FOUND:
      return notFound(`Operator ${operatorId}`);
    case CONFLICT:
      return conflict(failure.message);
    case UNPROCESSABLE: {
      const details = failure.details?.[0] as { errors?: FieldError[] } | undefined;
      return unprocessable(details?.errors ?? []);
    }
    case EVENT_TOO_LARGE:
      return new ServiceError('too_large', `${failure.message}; nothing was written.`);
    default:
      return unavailable('Temporal', `The ${what} of operator ${operatorId} failed: ${failure.message}`);
  }
}

/** An update sent to a finished workflow fails with "workflow execution already completed". */
function isClosedWorkflow(err: unknown): boolean {
  return err instanceof Error && /already completed/i.test(err.message);
}
