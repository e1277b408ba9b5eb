import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { Operator } from '../src/domain/operator';
import { loadConfig } from '../src/platform/config';
import { createLogger } from '../src/platform/logger';
import { requestContext } from '../src/platform/request-context';
import { startWorkflow, type WorkflowStart } from '../src/services/shared/workflow-start';

/**
 * The API's workflow start when Temporal's answer to the update-with-start is lost (a timeout, a
 * dropped connection): the service asks the server what runs under the workflow id. On the real
 * Temporal, with the answer dropped by a client interceptor after the server handled the call
 * (fault injection: the call itself is real). No worker polls the task queue, so the runs stay
 * where they are. A run another start made must be neither adopted nor cancelled, even under the
 * same request id.
 */

describe('a workflow start whose answer was lost', () => {
  const config = loadConfig();
  const taskQueue = `workflow-start-lost-answer-${randomUUID()}`;
  let connection: Connection;
  /** Every update-with-start's answer lost: the server handles it, the caller sees an error. */
  let losing: Client;
  const started: string[] = [];

  beforeAll(async () => {
    connection = await Connection.connect({ address: config.temporal.address });
    losing = new Client({
      connection,
      namespace: config.temporal.namespace,
      interceptors: {
        workflow: [
          {
            async startUpdateWithStart(input, next) {
              await next(input).catch(() => undefined);
              throw new Error('the answer was lost on the way back');
            },
          },
        ],
      },
    });
  });
  afterAll(async () => {
    const client = new Client({ connection, namespace: config.temporal.namespace });
    await Promise.all(
      started.map((id) =>
        client.workflow
          .getHandle(id)
          .terminate('test over')
          .catch(() => undefined),
      ),
    );
    await connection.close();
  });

  /** A run of the workflow id as the request `requestId` would have started it. */
  async function runStartedBy(requestId: string): Promise<string> {
    const workflowId = `lost-answer-${randomUUID()}`;
    started.push(workflowId);
    const client = new Client({ connection, namespace: config.temporal.namespace });
    await client.workflow.start('rotateCredentials', { workflowId, taskQueue, args: [], memo: { requestId } });
    return workflowId;
  }

  function start(
    workflowId: string,
    requestId: string,
    whenNoWorker: WorkflowStart<() => Promise<void>>['whenNoWorker'],
  ) {
    const discarded = { count: 0 };
    const deps = {
      temporal: losing,
      config: { ...config.temporal, taskQueue, onboardingAcceptTimeoutMs: 1000 },
      log: createLogger('silent'),
    };
    const result = requestContext.run({ requestId }, () =>
      startWorkflow<() => Promise<void>>(deps, {
        what: 'credential rotation',
        workflowType: 'rotateCredentials',
        workflowId,
        operatorId: randomUUID(),
        args: [],
        whenNoWorker,
        discard: async () => void discarded.count++,
      }),
    );
    return { result, discarded };
  }

  const queued = { queue: { id: 'queued' } as Operator };

  it("answers 409 for another start's run, discards its own preparations, and leaves the run alone", async () => {
    // Another request's run, and one started under the same request id (callers reuse them).
    for (const [whenNoWorker, theirs] of [
      [queued, 'another-request'],
      ['cancel', 'another-request'],
      [queued, 'this-request'],
    ] as const) {
      const workflowId = await runStartedBy(theirs);
      const { result, discarded } = start(workflowId, 'this-request', whenNoWorker);
      await expect(result).rejects.toMatchObject({ kind: 'conflict' });
      expect(discarded.count).toBe(1);
      const description = await losing.workflow.getHandle(workflowId).describe();
      expect(description.status.name).toBe('RUNNING');
      expect(description.historyLength).toBe(2); // started and its first task: no cancel asked
    }
  });

  it('adopts its own run: the start happened, only its answer was lost', async () => {
    const workflowId = `lost-answer-${randomUUID()}`;
    started.push(workflowId);
    const { result, discarded } = start(workflowId, 'this-request', queued);
    await expect(result).resolves.toMatchObject({ workflowId, operator: { id: 'queued' } });
    expect((await result).runId).toEqual(expect.any(String));
    expect(discarded.count).toBe(0);
  });

  it('cancels its own run when it must not wait for a worker (onboarding), and answers 503', async () => {
    const workflowId = `lost-answer-${randomUUID()}`;
    started.push(workflowId);
    const { result, discarded } = start(workflowId, 'this-request', 'cancel');
    await expect(result).rejects.toMatchObject({ kind: 'unavailable' });
    // Its compensation, once a worker runs it, undoes what it prepared: nothing discarded here.
    expect(discarded.count).toBe(0);
    const history = await losing.workflow.getHandle(workflowId).fetchHistory();
    expect(history.events?.some((e) => e.workflowExecutionCancelRequestedEventAttributes)).toBe(true);
  });
});
