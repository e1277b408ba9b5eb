import { credentialsPath } from '../src/domain/credentials';
import { connectorHealthSignal } from '../src/workflows/messages';
import { startChildWorker, type ChildWorker } from './support/child-worker';
import { EventWatcher } from './support/events';
import { startHarness, type Harness } from './support/harness';
import { newPassword, onboardActive, pendingRow, report, rotateAccepted, waitForType } from './support/rotation';

process.env.ROTATION_BIND_TIMEOUT_S ??= '120';

/** The worker runs in a child process that the test kills with SIGKILL mid-rotation. */
describe('credential rotation across a worker crash', () => {
  let h: Harness;
  let events: EventWatcher;
  let worker: ChildWorker | undefined;

  const startWorker = async () => {
    worker = await startChildWorker({ TEMPORAL_TASK_QUEUE: h.config.temporal.taskQueue, LOG_LEVEL: 'warn' });
  };

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    events = await EventWatcher.start(h.resources.nats, h.config.nats.stream);
    await startWorker();
  });
  afterAll(async () => {
    await worker?.stop();
    await events.stop();
    await h.stop();
  });

  it('finishes a rotation and a rollback on a new worker, Vault versions only increasing', async () => {
    const { id, body } = await onboardActive(h);
    const vaultVersions: number[] = [];
    const sample = async () => {
      const v = await h.resources.kv.currentVersion(credentialsPath(id));
      vaultVersions.push(v ?? -1);
      return v;
    };
    expect(await sample()).toBe(1);

    // 1. Killed while waiting for the bind; the report arrives while no worker runs.
    const password = newPassword();
    const rotation = await rotateAccepted(h, id, password);
    const handle = h.resources.temporal.workflow.getHandle(rotation.workflowId, rotation.runId);
    await waitForType(events, id, 'operator.config.credentials_rotated');
    expect(await sample()).toBe(2);
    await worker?.kill();
    expect((await handle.describe()).status.name).toBe('RUNNING');
    await handle.signal(connectorHealthSignal, report('UP', 2));
    // Nobody is left to act on it: the killed worker really is gone.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await pendingRow(h, id)).toEqual({ credentials_version: 1, pending_credentials_version: 2 });
    expect(await sample()).toBe(2);
    await startWorker();
    await expect(handle.result()).resolves.toEqual({ operatorId: id, status: 'ROTATED', credentialsVersion: 2 });
    expect(await sample()).toBe(2);
    expect(await pendingRow(h, id)).toEqual({ credentials_version: 2, pending_credentials_version: null });
    expect((await h.resources.kv.read(credentialsPath(id)))?.data).toEqual({ system_id: body.systemId, password });

    // 2. Killed again; the new worker rolls back on AUTH_FAILED.
    const rejected = await rotateAccepted(h, id, newPassword());
    const second = h.resources.temporal.workflow.getHandle(rejected.workflowId, rejected.runId);
    await waitForType(events, id, 'operator.config.credentials_rotated', 3);
    expect(await sample()).toBe(3);
    await worker?.kill();
    await startWorker();
    await second.signal(connectorHealthSignal, report('AUTH_FAILED', 3));
    await expect(second.result()).rejects.toThrow();
    expect(await sample()).toBe(4);
    expect(await pendingRow(h, id)).toEqual({ credentials_version: 2, pending_credentials_version: null });
    expect((await h.resources.kv.read(credentialsPath(id)))?.data).toEqual({ system_id: body.systemId, password });

    expect(vaultVersions).toEqual([...vaultVersions].sort((a, b) => a - b));
    const published = await waitForType(events, id, 'operator.config.credentials_rolled_back');
    // Exactly one event per change, in version order, although two workers ran each rotation.
    expect(published.map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(published.map((e) => e.type.replace('operator.config.', ''))).toEqual([
      'created',
      'activated',
      'credentials_rotated',
      'credentials_rotated',
      'credentials_rotated',
      'credentials_rolled_back',
    ]);
    // Two worker kills, each waited out by Temporal's workflow task timeout: slow by design.
  }, 120_000);
});
