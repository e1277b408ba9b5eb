import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { expectProblem } from './support/problems';
import { expectReplays } from './support/replay';
import {
  credentialsPath,
  ROTATION_STAGING_FOLDER,
  rotationEntryOf,
  stagedRotationPath,
} from '../src/domain/credentials';
import { workflowIds } from '../src/domain/workflow-ids';
import { createLogger } from '../src/platform/logger';
import { CredentialsService } from '../src/services/credentials';
import { ServiceError } from '../src/services/shared/errors';
import { stagePassword, sweepStagedCredentials } from '../src/services/credentials-staging';
import { connectorHealthSignal } from '../src/workflows/messages';
import { rotationSteps } from '../src/workflows/rotation';
import { EventWatcher } from './support/events';
import { newOperatorRequest, startHarness, type Harness } from './support/harness';
import {
  newPassword,
  onboardActive,
  pendingRow,
  report,
  rotate,
  rotateAccepted,
  type RotationAccepted,
  waitForStep,
  waitForType,
} from './support/rotation';
import { expectNoSecret } from './support/secrets';

const ROTATED = 'operator.config.credentials_rotated';
const ROLLED_BACK = 'operator.config.credentials_rolled_back';

// Long enough for a loaded machine to deliver the test's report; the timeout test shortens it.
process.env.ROTATION_BIND_TIMEOUT_S ??= '45';

describe('credential rotation', () => {
  let h: Harness;
  let events: EventWatcher;
  let credentials: CredentialsService;
  /** Finished runs whose histories the replay test checks against the current workflow code. */
  const finished: Array<{ workflowId: string; runId: string }> = [];

  beforeAll(async () => {
    h = await startHarness();
    events = await EventWatcher.start(h.resources.nats, h.config.nats.stream);
    credentials = new CredentialsService({ db: h.resources.db, kv: h.resources.kv, log: createLogger('silent') });
  });
  afterAll(async () => {
    await events.stop();
    await h.stop();
  });

  const handleOf = (a: { workflowId: string; runId: string }) => {
    finished.push(a);
    return h.resources.temporal.workflow.getHandle(a.workflowId, a.runId);
  };
  const vaultData = async (id: string, version?: number) =>
    (await h.resources.kv.read(credentialsPath(id), version))?.data;
  /** Every rotation staging entry of the operator, each request's own or a legacy one. */
  const stagedRotationsOf = async (operatorId: string) =>
    (await h.resources.kv.list(ROTATION_STAGING_FOLDER)).filter((e) => rotationEntryOf(e).operatorId === operatorId);

  it('makes the new version current only after the connector binds with it', async () => {
    const { id, body } = await onboardActive(h);
    const password = newPassword();
    const res = await rotate(h, id, password);
    expect(res.status).toBe(202);
    expect(res.headers.get('location')).toBe(`/v1/admin/operators/${id}/workflows`);
    const accepted = (await res.json()) as RotationAccepted;
    expect(accepted).toMatchObject({ operator: { id, status: 'ACTIVE' }, workflowId: `credential-rotation-${id}` });
    expect(accepted.workflowUrl).toContain(accepted.runId);
    const handle = handleOf(accepted);

    await waitForType(events, id, ROTATED);
    await waitForStep(handle, rotationSteps.query, 'waitingForBind');
    // Pending: Vault holds version 2, but the connector's default answer is still version 1.
    expect(await pendingRow(h, id)).toEqual({ credentials_version: 1, pending_credentials_version: 2 });
    expect(await vaultData(id, 2)).toEqual({ system_id: body.systemId, password });
    expect(await credentials.read(id, 'current', 'test')).toMatchObject({
      credentialsVersion: 1,
      password: body.password,
    });
    expect(await credentials.read(id, 'pending', 'test')).toMatchObject({ credentialsVersion: 2, password });
    expect(await stagedRotationsOf(id)).toEqual([]);

    expect(await credentials.read(id, 'current', 'test')).toMatchObject({ credentialsVersion: 1 });
    await handle.signal(connectorHealthSignal, report('UP', 2));
    await expect(handle.result()).resolves.toEqual({ operatorId: id, status: 'ROTATED', credentialsVersion: 2 });

    expect(await pendingRow(h, id)).toEqual({ credentials_version: 2, pending_credentials_version: null });
    expect(await credentials.read(id, 'current', 'test')).toMatchObject({ credentialsVersion: 2, password });
    await expect(credentials.read(id, 'pending', 'test')).rejects.toBeInstanceOf(ServiceError);
    expect(await h.resources.kv.currentVersion(credentialsPath(id))).toBe(2);
    const operator = (await (await h.api(`/operators/${id}`)).json()) as Record<string, unknown>;
    expect(operator).toMatchObject({ status: 'ACTIVE', version: 4, credentialsVersion: 2 });

    const published = await events.waitFor(id, (e) => e.length >= 4);
    expect(published.map((e) => [e.type, e.version, e.data])).toEqual([
      ['operator.config.created', 1, expect.anything()],
      ['operator.config.activated', 2, expect.anything()],
      [ROTATED, 3, { credentialsVersion: 2, previousCredentialsVersion: 1, state: 'pending' }],
      [ROTATED, 4, { credentialsVersion: 2, previousCredentialsVersion: 1, state: 'current' }],
    ]);
  });

  it('keeps the previous version current on AUTH_FAILED, and a later rotation still works', async () => {
    const { id, body } = await onboardActive(h);
    const rejected = newPassword();
    const first = await rotateAccepted(h, id, rejected);
    const handle = handleOf(first);
    await waitForType(events, id, ROTATED);
    await handle.signal(connectorHealthSignal, report('AUTH_FAILED', 2));

    const failure = await handle.result().catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toBeInstanceOf(ApplicationFailure);
    expect((failure as WorkflowFailedError).cause).toMatchObject({
      type: 'CredentialsRolledBack',
      message: 'the connector reported AUTH_FAILED with credentials version 2',
    });

    expect(await pendingRow(h, id)).toEqual({ credentials_version: 1, pending_credentials_version: null });
    expect(await credentials.read(id, 'current', 'test')).toMatchObject({
      credentialsVersion: 1,
      password: body.password,
    });
    // Vault only moves forward: version 2 (rejected) stays, version 3 holds the good password again.
    expect(await h.resources.kv.currentVersion(credentialsPath(id))).toBe(3);
    expect(await vaultData(id)).toEqual({ system_id: body.systemId, password: body.password });
    expect(await vaultData(id, 2)).toEqual({ system_id: body.systemId, password: rejected });
    expect(await stagedRotationsOf(id)).toEqual([]);

    const published = await waitForType(events, id, ROLLED_BACK);
    expect(published.slice(2).map((e) => [e.type, e.version, e.data])).toEqual([
      [ROTATED, 3, { credentialsVersion: 2, previousCredentialsVersion: 1, state: 'pending' }],
      [
        ROLLED_BACK,
        4,
        {
          credentialsVersion: 1,
          rejectedCredentialsVersion: 2,
          reason: 'the connector reported AUTH_FAILED with credentials version 2',
        },
      ],
    ]);
    expect(((await (await h.api(`/operators/${id}`)).json()) as { status: string }).status).toBe('ACTIVE');

    // The next rotation builds on Vault's latest version (3), not on the rejected one.
    const password = newPassword();
    const second = await rotateAccepted(h, id, password);
    const again = handleOf(second);
    await waitForType(events, id, ROTATED, 2);
    expect(await pendingRow(h, id)).toEqual({ credentials_version: 1, pending_credentials_version: 4 });
    await again.signal(connectorHealthSignal, report('UP', 4));
    await expect(again.result()).resolves.toMatchObject({ credentialsVersion: 4 });
    expect(await credentials.read(id, 'current', 'test')).toMatchObject({ credentialsVersion: 4, password });
    const all = await waitForType(events, id, ROTATED, 3);
    expect(all.at(-1)?.data).toEqual({ credentialsVersion: 4, previousCredentialsVersion: 1, state: 'current' });
  });

  // The bind timeout, other versions' reports and a refused step: test/workflows/rotation.test.ts.
  it('refuses a second rotation while one runs, without staging its password, and allows one after', async () => {
    const { id } = await onboardActive(h);
    const first = await rotateAccepted(h, id, newPassword());
    const handle = handleOf(first);
    await waitForType(events, id, ROTATED);

    const second = newPassword();
    const refused = await rotate(h, id, second);
    expect(refused.status).toBe(409);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await refused.json()) as { detail: string; workflowId: string };
    expect(problem.workflowId).toBe(first.workflowId);
    expect(problem.detail).toContain(first.workflowId);
    expectNoSecret(JSON.stringify(problem), second);
    expect(await stagedRotationsOf(id)).toEqual([]);

    await handle.signal(connectorHealthSignal, report('UP', 2));
    await handle.result();
    const later = await rotateAccepted(h, id, newPassword());
    expect(later.workflowId).toBe(first.workflowId);
    expect(later.runId).not.toBe(first.runId);
    const laterHandle = handleOf(later);
    await waitForType(events, id, ROTATED, 3);
    await laterHandle.signal(connectorHealthSignal, report('UP', 3));
    await expect(laterHandle.result()).resolves.toMatchObject({ credentialsVersion: 3 });
  });

  it('answers one 202 and one 409 to two concurrent rotations and leaves no staged secret', async () => {
    const { id } = await onboardActive(h);
    const answers = await Promise.all([rotate(h, id, newPassword()), rotate(h, id, newPassword())]);
    expect(answers.map((a) => a.status).sort()).toEqual([202, 409]);
    const winner = (await (answers.find((a) => a.status === 202) as Response).json()) as {
      workflowId: string;
      runId: string;
    };
    const handle = handleOf(winner);
    await waitForType(events, id, ROTATED);
    await handle.signal(connectorHealthSignal, report('UP', 2));
    await handle.result();
    expect(await stagedRotationsOf(id)).toEqual([]);
    expect(await h.resources.kv.currentVersion(credentialsPath(id))).toBe(2);
  });

  it('refuses bad input, unknown operators and operators that are not ACTIVE, writing nothing', async () => {
    const { id } = await onboardActive(h);
    const cases: Array<[unknown, string]> = [
      [{ password: 'nine-char' }, 'password'],
      [{ password: '' }, 'password'],
      [{}, 'password'],
      [{ password: 12345678 }, 'password'],
      [{ password: 'ok', systemId: 'other' }, 'systemId'],
    ];
    for (const [json, field] of cases) {
      const res = await h.api(`/operators/${id}/credentials/rotate`, { method: 'POST', json });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      const problem = (await res.json()) as { errors: Array<{ field: string }> };
      expect(problem.errors.map((e) => e.field)).toContain(field);
      expect(JSON.stringify(problem)).not.toContain('nine-char');
    }
    expect((await rotate(h, 'not-a-uuid', 'pw')).status).toBe(400);
    expect((await rotate(h, '00000000-0000-4000-8000-000000000000', 'pw')).status).toBe(404);

    // Still ONBOARDING: no rotation.
    const onboarding = await h.api('/operators', { method: 'POST', json: newOperatorRequest() });
    const pending = (await onboarding.json()) as { operator: { id: string }; workflowId: string };
    const notActive = await rotate(h, pending.operator.id, 'pw');
    expect(notActive.status).toBe(409);
    expect(((await notActive.json()) as { detail: string }).detail).toMatch(/is ONBOARDING/);
    await h.resources.temporal.workflow.getHandle(pending.workflowId).cancel();

    for (const operatorId of [id, pending.operator.id]) {
      expect(await stagedRotationsOf(operatorId)).toEqual([]);
      await expect(
        h.resources.temporal.workflow.getHandle(workflowIds.rotation(operatorId)).describe(),
      ).rejects.toBeInstanceOf(WorkflowNotFoundError);
    }
  });

  it('replays a repeated Idempotency-Key without starting a second rotation, and refuses it with another password', async () => {
    const { id } = await onboardActive(h);
    const key = `rotate-${id}`;
    const password = newPassword();
    const first = await rotate(h, id, password, { 'Idempotency-Key': key });
    const second = await rotate(h, id, password, { 'Idempotency-Key': key });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    // The same key with a new password is another request: a 422, never a replay of the first.
    const other = await rotate(h, id, newPassword(), { 'Idempotency-Key': key });
    await expectProblem(other, 422);
    expect(other.headers.get('idempotent-replayed')).toBeNull();
    const [a, b] = (await Promise.all([first.json(), second.json()])) as Array<{ workflowId: string; runId: string }>;
    expect(b).toEqual(a);
    const handle = handleOf(a as { workflowId: string; runId: string });
    await waitForType(events, id, ROTATED);
    await handle.signal(connectorHealthSignal, report('UP', 2));
    await handle.result();
    const runs = (await (await h.api(`/operators/${id}/workflows`)).json()) as { items: Array<{ type: string }> };
    expect(runs.items.filter((r) => r.type === 'rotateCredentials')).toHaveLength(1);
  });

  it('rolls back when ops cancel a rotation that waits for the bind', async () => {
    const { id, body } = await onboardActive(h);
    const accepted = await rotateAccepted(h, id, newPassword());
    const handle = handleOf(accepted);
    await waitForType(events, id, ROTATED);
    await handle.cancel();
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    expect(await pendingRow(h, id)).toEqual({ credentials_version: 1, pending_credentials_version: null });
    expect(await vaultData(id)).toEqual({ system_id: body.systemId, password: body.password });
    const published = await waitForType(events, id, ROLLED_BACK);
    expect(published.at(-1)?.data).toMatchObject({
      credentialsVersion: 1,
      rejectedCredentialsVersion: 2,
      reason: 'cancelled',
    });
  });

  it('sweeps a staged rotation password only when no rotation owns it', async () => {
    const { id } = await onboardActive(h);
    const orphan = (await onboardActive(h)).id;
    // An orphan of this version (a request's own entry) and one of the version before (no key).
    const orphanKeyed = stagedRotationPath(orphan, 'request-1');
    await h.resources.kv.write(orphanKeyed, { system_id: 'acct', password: 'orphan1' });
    await h.resources.kv.write(stagedRotationPath(orphan), { system_id: 'acct', password: 'orphan2' });
    // A running rotation owns its entry (a rotation on a queue nobody polls keeps running).
    const owned = stagedRotationPath(id, 'request-2');
    await h.resources.kv.write(owned, { system_id: 'acct', password: 'owned1' });
    const owner = await h.resources.temporal.workflow.start('rotateCredentials', {
      workflowId: workflowIds.rotation(id),
      taskQueue: `rotation-sweep-test-${id}`,
      args: [{ operatorId: id, stagedVersion: 1, stagingKey: 'request-2', actor: 'test', bindTimeoutS: 1 }],
    });
    try {
      const swept = await sweepStagedCredentials(h.resources.kv, h.resources.temporal, {
        maxAgeMs: 0,
        onlyOperators: [id, orphan],
      });
      expect(swept).toEqual([orphan, orphan]);
      expect(await stagedRotationsOf(orphan)).toEqual([]);
      expect(await h.resources.kv.currentVersion(owned)).toBe(1);
    } finally {
      await owner.terminate('test over');
      await h.resources.kv.destroy(owned);
    }
  });

  it("stages each request in an entry of its own, which another request's clean-up never touches", async () => {
    const { id } = await onboardActive(h);
    const credentials = { system_id: 'acct', password: 'pw' };
    const log = createLogger('silent');
    const first = await stagePassword(h.resources.kv, log, 'rotation', id, credentials);
    const second = await stagePassword(h.resources.kv, log, 'rotation', id, credentials);
    expect(first.key).not.toEqual(second.key);
    expect(await stagedRotationsOf(id)).toHaveLength(2);
    // The first request's clean-up (or the sweep's) takes only its own entry.
    await first.discard();
    expect(await h.resources.kv.currentVersion(stagedRotationPath(id, second.key))).toBe(1);
    await second.discard();
    expect(await stagedRotationsOf(id)).toEqual([]);
  });

  it('replays the finished histories deterministically with the current workflow code', async () => {
    expect(finished.length).toBeGreaterThanOrEqual(5);
    await expectReplays(h.resources.temporal, finished);
  });
});
