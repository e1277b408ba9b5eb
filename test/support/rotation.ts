import { randomBytes } from 'node:crypto';
import type { QueryDefinition } from '@temporalio/workflow';
import type { EventEnvelope } from '../../src/events/envelope';
import { connectorHealthSignal, type ConnectorHealth, type StepState } from '../../src/workflows/messages';
import type { EventWatcher } from './events';
import { newOperatorRequest, type Harness } from './harness';

/** Helpers shared by the credential-rotation tests. */

export interface RotationAccepted {
  operator: { id: string; status: string };
  workflowId: string;
  runId: string;
  workflowUrl: string;
}

export const report = (status: ConnectorHealth['status'], credentialsVersion: number): ConnectorHealth => ({
  status,
  credentialsVersion,
  inflight: 0,
  connectorInstance: 'smpp-connector-test',
  reportedAt: new Date().toISOString(),
});

/** A password no test has used: 8 characters (the SMPP limit), easy to search for. */
export function newPassword(prefix = 'r'): string {
  return `${prefix}${randomBytes(8).toString('hex')}`.slice(0, 8);
}

/** Onboards an operator and plays its connector's first healthy bind: ACTIVE, credentials version 1. */
export async function onboardActive(h: Harness): Promise<{ id: string; body: ReturnType<typeof newOperatorRequest> }> {
  const body = newOperatorRequest();
  const res = await h.api('/operators', { method: 'POST', json: body });
  if (res.status !== 202) throw new Error(`onboarding answered ${res.status}: ${await res.text()}`);
  const accepted = (await res.json()) as { operator: { id: string }; workflowId: string };
  const handle = h.resources.temporal.workflow.getHandle(accepted.workflowId);
  await handle.signal(connectorHealthSignal, report('UP', 1));
  await handle.result();
  return { id: accepted.operator.id, body };
}

export async function rotate(h: Harness, id: string, password: string, headers: Record<string, string> = {}) {
  return h.api(`/operators/${id}/credentials/rotate`, { method: 'POST', json: { password }, headers });
}

export async function rotateAccepted(h: Harness, id: string, password: string): Promise<RotationAccepted> {
  const res = await rotate(h, id, password);
  if (res.status !== 202) throw new Error(`rotation answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as RotationAccepted;
}

/** Waits until the operator's events include `count` of the given type; returns the events. */
export function waitForType(events: EventWatcher, id: string, type: string, count = 1): Promise<EventEnvelope[]> {
  return events.waitFor(id, (e) => e.filter((x) => x.type === type).length >= count, 30_000);
}

export async function pendingRow(
  h: Harness,
  id: string,
): Promise<{ credentials_version: number; pending_credentials_version: number | null }> {
  const { rows } = await h.resources.db.query(
    'SELECT credentials_version, pending_credentials_version FROM ops.operators WHERE id = $1',
    [id],
  );
  return rows[0] as { credentials_version: number; pending_credentials_version: number | null };
}

/** Every string and byte run (decoded as UTF-8) inside a value: payloads are bytes in history. */
export function textOf(value: unknown): string[] {
  if (value instanceof Uint8Array) return [Buffer.from(value).toString('utf8')];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(textOf);
  if (value && typeof value === 'object') return Object.values(value).flatMap(textOf);
  return [];
}

/** Polls a running workflow's currentStep query until it reaches `step` (steps move asynchronously). */
export async function waitForStep<S extends string>(
  handle: { query: (q: QueryDefinition<StepState<S>>) => Promise<StepState<S>> },
  query: QueryDefinition<StepState<S>>,
  step: S,
  timeoutMs = 15_000,
): Promise<StepState<S>> {
  const deadline = Date.now() + timeoutMs;
  let state: StepState<S> | undefined;
  while (Date.now() < deadline) {
    state = await handle.query(query);
    if (state.step === step) return state;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the workflow's step stayed ${JSON.stringify(state)}, expected ${step}`);
}
