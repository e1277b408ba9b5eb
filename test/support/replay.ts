import type { Client } from '@temporalio/client';
import { Worker, type ReplayWorkerOptions } from '@temporalio/worker';

type History = Parameters<typeof Worker.runReplayHistory>[1];

/** Replays one history with the current workflow bundle: a non-deterministic change fails here, not in production. */
export async function expectHistoryReplays(history: History, workflowId: string): Promise<void> {
  const options: ReplayWorkerOptions = { workflowBundle: { codePath: process.env.TEMPORAL_WORKFLOW_BUNDLE ?? '' } };
  await expect(Worker.runReplayHistory(options, history, workflowId)).resolves.toBeUndefined();
}

/** Replays finished runs with the current workflow bundle. */
export async function expectReplays(temporal: Client, runs: ReadonlyArray<{ workflowId: string; runId?: string }>) {
  for (const { workflowId, runId } of runs) {
    await expectHistoryReplays(await temporal.workflow.getHandle(workflowId, runId).fetchHistory(), workflowId);
  }
}
