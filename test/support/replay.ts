import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';

/** Replays finished runs with the current workflow bundle: a non-deterministic change fails here, not in production. */
export async function expectReplays(temporal: Client, runs: ReadonlyArray<{ workflowId: string; runId?: string }>) {
  for (const { workflowId, runId } of runs) {
    const history = await temporal.workflow.getHandle(workflowId, runId).fetchHistory();
    await expect(
      Worker.runReplayHistory(
        { workflowBundle: { codePath: process.env.TEMPORAL_WORKFLOW_BUNDLE ?? '' } },
        history,
        workflowId,
      ),
    ).resolves.toBeUndefined();
  }
}
