import {
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { isWorkflowRunning, workflowExists } from '../clients/temporal';
import type { Config } from '../config';
import { CONFLICT, NOT_FOUND } from '../domain/failures';
import type { Operator } from '../domain/operator';
import { OPERATOR_ID, workflowIds } from '../domain/workflow-ids';
import type { Logger } from '../logger';
import type { drainOperator } from '../workflows/drain';
import { cancelDrainUpdate, drainStartedUpdate } from '../workflows/messages';
import { conflict, notFound, unavailable } from './errors';
import type { OperatorService } from './operators';

export interface DrainServiceDeps {
  temporal: Client;
  operators: OperatorService;
  config: Config['temporal'];
  log: Logger;
}

export interface DrainAccepted {
  operator: Operator;
  workflowId: string;
  workflowUrl: string;
}

/** DELETE /operators/{id} and its cancellation: both talk to the drain workflow. */
export class DrainService {
  constructor(private readonly deps: DrainServiceDeps) {}

  /**
   * Starts the drain and answers once the workflow has marked the operator DRAINING, so the
   * answer shows the new state and a refusal (not ACTIVE) is a synchronous 409. Without a worker
   * in time the drain stays queued and the answer shows the operator as it still is.
   */
  async startDrain(id: string, actor: string): Promise<DrainAccepted> {
    const { temporal, operators, config, log } = this.deps;
    const current = await operators.get(id);
    if (current.status !== 'ACTIVE') throw conflict(`Operator ${id} is ${current.status}; only an ACTIVE one drains.`);
    if (await isWorkflowRunning(temporal, workflowIds.rotation(id)))
      throw conflict(`A credential rotation of operator ${id} is running; drain it once the rotation ends.`);

    const workflowId = workflowIds.drain(id);
    const workflowUrl = operators.workflowUrl(workflowId);
    const start = new WithStartWorkflowOperation<typeof drainOperator>('drainOperator', {
      workflowId,
      taskQueue: config.taskQueue,
      workflowIdConflictPolicy: 'FAIL',
      typedSearchAttributes: [{ key: OPERATOR_ID, value: id }],
      args: [{ operatorId: id, actor, drainTimeoutS: config.drainTimeoutS }],
    });
    try {
      const operator = await temporal.withDeadline(Date.now() + config.onboardingAcceptTimeoutMs, () =>
        temporal.workflow.executeUpdateWithStart(drainStartedUpdate, { startWorkflowOperation: start }),
      );
      return { operator, workflowId, workflowUrl };
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
        throw refusal(id, err.cause);
      }
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        throw conflict(`A drain of operator ${id} is already running.`, { workflowId, workflowUrl });
      }
      if (!(await workflowExists(temporal, workflowId))) throw err;
      log.warn({ operatorId: id, workflowId }, 'drain accepted; no worker has marked it DRAINING yet');
      return { operator: current, workflowId, workflowUrl };
    }
  }

  /** Stops a running drain before its soft delete: the operator is ACTIVE again. */
  async cancelDrain(id: string, actor: string): Promise<Operator> {
    const { temporal, operators, config } = this.deps;
    await operators.get(id);
    const handle = temporal.workflow.getHandle(workflowIds.drain(id));
    try {
      return await temporal.withDeadline(Date.now() + config.onboardingAcceptTimeoutMs, () =>
        handle.executeUpdate(cancelDrainUpdate, { args: [{ actor }] }),
      );
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw conflict(`No drain of operator ${id} is running.`);
      if (err instanceof WorkflowUpdateFailedError) {
        if (err.cause instanceof ApplicationFailure) throw refusal(id, err.cause);
        throw conflict(`The drain of operator ${id} can no longer be cancelled: ${err.cause?.message ?? err.message}`);
      }
      if (isClosedWorkflow(err)) throw conflict(`No drain of operator ${id} is running.`);
      throw unavailable(`The drain of operator ${id} did not answer in time; retry.`);
    }
  }
}

function refusal(id: string, failure: ApplicationFailure) {
  if (failure.type === NOT_FOUND) return notFound(`Operator ${id}`);
  if (failure.type === CONFLICT) return conflict(failure.message);
  return unavailable(`The drain of operator ${id} failed: ${failure.message}`);
}

/** An update sent to a finished workflow fails with "workflow execution already completed". */
function isClosedWorkflow(err: unknown): boolean {
  return err instanceof Error && /already completed/i.test(err.message);
}
