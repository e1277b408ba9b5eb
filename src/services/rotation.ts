import { isWorkflowRunning } from '../clients/temporal';
import { findOperator } from '../db/operators';
import { canRotateCredentials, refusal } from '../domain/lifecycle';
import { workflowIds } from '../domain/workflow-ids';
import type { rotateCredentials } from '../workflows/rotation';
import { stagePassword } from './credentials-staging';
import { conflict, notFound } from './shared/errors';
import { startWorkflow, workflowUrl, type WorkflowServiceDeps, type WorkflowStarted } from './shared/workflow-start';

/**
 * POST /operators/{id}/credentials/rotate: stages the new password in Vault and starts the
 * rotation workflow with only the staged version. Every refusal it can foresee (unknown
 * operator, a rotation already running, not ACTIVE, a drain running) happens before anything is
 * staged.
 */
export class RotationService {
  constructor(private readonly deps: WorkflowServiceDeps) {}

  async start(operatorId: string, password: string, actor: string): Promise<WorkflowStarted> {
    const { db, kv, temporal, config, log } = this.deps;
    const op = await findOperator(db, operatorId);
    if (!op) throw notFound(`Operator ${operatorId}`);
    const workflowId = workflowIds.rotation(operatorId);
    if (await isWorkflowRunning(temporal, workflowId)) {
      throw conflict(`A credential rotation of operator ${operatorId} is already running: ${workflowId}.`, {
        workflowId,
        workflowUrl: workflowUrl(config, temporal, workflowId),
      });
    }
    if (!canRotateCredentials(op.status)) {
      throw conflict(refusal(operatorId, op.status, 'only an ACTIVE operator rotates its credentials'));
    }
    if (await isWorkflowRunning(temporal, workflowIds.drain(operatorId))) {
      throw conflict(`Operator ${operatorId} is being drained; its credentials no longer rotate.`);
    }

    const staged = await stagePassword(kv, log, 'rotation', operatorId, { system_id: op.systemId, password });
    return startWorkflow<typeof rotateCredentials>(this.deps, {
      what: 'credential rotation',
      workflowType: 'rotateCredentials',
      workflowId,
      operatorId,
      args: [
        {
          operatorId,
          stagedVersion: staged.version,
          stagingKey: staged.key,
          actor,
          bindTimeoutS: config.rotationBindTimeoutS,
        },
      ],
      whenNoWorker: { queue: op },
      // The entry is this request's own: no other rotation reads it.
      discard: staged.discard,
    });
  }
}
