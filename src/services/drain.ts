import { isWorkflowRunning } from '../clients/temporal';
import { canTransition, refusal } from '../domain/lifecycle';
import type { Operator } from '../domain/operator';
import { workflowIds } from '../domain/workflow-ids';
import { cancelDrainUpdate, type drainOperator } from '../workflows/drain';
import type { OperatorService } from './operators';
import { conflict } from './shared/errors';
import { startWorkflow, updateWorkflow, type WorkflowStartDeps, type WorkflowStarted } from './shared/workflow-start';

export interface DrainServiceDeps extends WorkflowStartDeps {
  operators: OperatorService;
}

/** DELETE /operators/{id} and its cancellation: both talk to the drain workflow. */
export class DrainService {
  constructor(private readonly deps: DrainServiceDeps) {}

  /**
   * Starts the drain and answers once the workflow has marked the operator DRAINING, so the
   * answer shows the new state and a refusal (not ACTIVE) is a synchronous 409. Without a worker
   * in time the drain stays queued and the answer shows the operator as it still is.
   */
  async start(id: string, actor: string): Promise<WorkflowStarted> {
    const { temporal, operators, config } = this.deps;
    const current = await operators.get(id);
    if (!canTransition(current.status, 'DRAINING')) {
      throw conflict(refusal(id, current.status, 'only an ACTIVE one drains'));
    }
    if (await isWorkflowRunning(temporal, workflowIds.rotation(id)))
      throw conflict(`A credential rotation of operator ${id} is running; drain it once the rotation ends.`);

    return startWorkflow<typeof drainOperator>(this.deps, {
      what: 'drain',
      workflowType: 'drainOperator',
      workflowId: workflowIds.drain(id),
      operatorId: id,
      args: [
        { operatorId: id, actor, drainTimeoutS: config.drainTimeoutS, instanceWindowS: config.drainInstanceWindowS },
      ],
      whenNoWorker: { queue: current },
    });
  }

  /** Stops a running drain before its soft delete: the operator is ACTIVE again. */
  async cancel(id: string, actor: string): Promise<Operator> {
    const { temporal, operators } = this.deps;
    await operators.get(id);
    const workflowId = workflowIds.drain(id);
    return updateWorkflow(this.deps, { what: 'drain', workflowId, operatorId: id }, () =>
      temporal.workflow.getHandle(workflowId).executeUpdate(cancelDrainUpdate, { args: [{ actor }] }),
    );
  }
}
