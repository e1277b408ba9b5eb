import { Counter, type Registry } from 'prom-client';

/**
 * `workflows_started_total{type, outcome}`: every workflow start the API asked for, by workflow
 * type and how it ended: `started`, or the refusal's kind (`conflict`: one already running or a
 * duplicate, `not_found`, `too_large`, `unavailable`: Temporal or no worker). How they close is
 * the SDK's `temporal_workflow_completed_total` / `_failed_total` / `_canceled_total` by type.
 */
export interface WorkflowStartCounter {
  count(type: string, outcome: string): void;
}

export function workflowStartCounter(registry: Registry): WorkflowStartCounter {
  const started = new Counter({
    name: 'workflows_started_total',
    help: 'Workflow starts the API asked for, by workflow type and outcome',
    labelNames: ['type', 'outcome'],
    registers: [registry],
  });
  return { count: (type, outcome) => started.inc({ type, outcome }) };
}
