import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Db } from '../clients/postgres';
import type { KvStore } from '../clients/vault';
import { isWorkflowRunning } from '../clients/temporal';
import type { Config } from '../config';
import { findOperator } from '../db/operators';
import { stagedRotationPath } from '../domain/credentials';
import { OPERATOR_ID, workflowIds } from '../domain/workflow-ids';
import type { Logger } from '../logger';
import type { rotateCredentials } from '../workflows/rotation';
import { conflict, notFound } from './errors';

export interface RotationDeps {
  db: Db;
  kv: KvStore;
  temporal: Client;
  config: Config['temporal'];
  log: Logger;
}

export interface RotationStarted {
  operatorId: string;
  workflowId: string;
  runId: string;
}

/**
 * POST /operators/{id}/credentials/rotate: stages the new password in Vault and starts the
 * rotation workflow with only the staged version. Every refusal (unknown operator, a rotation
 * already running, not ACTIVE) happens before anything is staged.
 */
export async function startRotation(
  deps: RotationDeps,
  operatorId: string,
  password: string,
  actor: string,
): Promise<RotationStarted> {
  const { db, kv, temporal, config, log } = deps;
  const op = await findOperator(db, operatorId);
  if (!op) throw notFound(`Operator ${operatorId}`);
  const workflowId = workflowIds.rotation(operatorId);
  if (await isWorkflowRunning(temporal, workflowId)) throw alreadyRotating(operatorId, workflowId);
  if (op.status !== 'ACTIVE') {
    throw conflict(`Operator ${operatorId} is ${op.status}; only an ACTIVE operator rotates its credentials.`);
  }
  if (await isWorkflowRunning(temporal, workflowIds.drain(operatorId))) {
    throw conflict(`Operator ${operatorId} is being drained; its credentials no longer rotate.`);
  }

  const staged = stagedRotationPath(operatorId);
  const stagedVersion = await kv.write(staged, { system_id: op.systemId, password });
  try {
    const handle = await temporal.workflow.start<typeof rotateCredentials>('rotateCredentials', {
      workflowId,
      taskQueue: config.taskQueue,
      workflowIdConflictPolicy: 'FAIL',
      // A rotation may follow a finished one, whatever its outcome.
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      typedSearchAttributes: [{ key: OPERATOR_ID, value: operatorId }],
      args: [{ operatorId, stagedVersion, actor, bindTimeoutS: config.rotationBindTimeoutS }],
    });
    return { operatorId, workflowId, runId: handle.firstExecutionRunId };
  } catch (err) {
    // A concurrent request won: its rotation destroys the whole staging path (this entry too)
    // when it ends, and destroying it now could take the winner's password before it is used.
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw alreadyRotating(operatorId, workflowId);
    const owned = await isWorkflowRunning(temporal, workflowId).catch(() => true);
    if (!owned) {
      await kv
        .destroy(staged)
        .catch((e: unknown) => log.error({ err: (e as Error).message, operatorId }, 'staged secret left behind'));
    }
    throw err;
  }
}

function alreadyRotating(operatorId: string, workflowId: string) {
  return conflict(`A credential rotation of operator ${operatorId} is already running: ${workflowId}.`, {
    workflowId,
  });
}
