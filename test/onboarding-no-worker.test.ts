import { credentialsPath, stagedCredentialsPath } from '../src/domain/credentials';
import { newOperatorRequest, startHarness, type Harness } from './support/harness';
import { expectNoSecret } from './support/secrets';

/** POST /operators while no worker polls the task queue: a bounded wait, then a clean 503. */
describe('onboarding without a worker', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ worker: false, acceptTimeoutMs: 1500 });
  });
  afterAll(() => h.stop());

  it('answers 503 in bounded time and leaves nothing behind once a worker returns', async () => {
    const body = newOperatorRequest();
    const res = await h.api('/operators', { method: 'POST', json: body });
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await res.json()) as { operatorId: string; workflowId: string; detail: string };
    expect(problem.detail).toContain('cancelled');
    expectNoSecret(JSON.stringify(problem), body.password);

    // The staged password waits in Vault until the cancelled workflow compensates.
    expect(await h.resources.kv.currentVersion(stagedCredentialsPath(problem.operatorId))).toBe(1);
    await h.startWorker();
    const handle = h.resources.temporal.workflow.getHandle(problem.workflowId);
    await expect(handle.result()).rejects.toThrow();
    expect((await handle.describe()).status.name).toBe('CANCELLED');

    expect(await h.resources.kv.currentVersion(stagedCredentialsPath(problem.operatorId))).toBeUndefined();
    expect(await h.resources.kv.currentVersion(credentialsPath(problem.operatorId))).toBeUndefined();
    const { rows } = await h.resources.db.query('SELECT id FROM ops.operators WHERE host = $1', [body.host]);
    expect(rows).toHaveLength(0);

    const again = await h.api('/operators', { method: 'POST', json: body });
    expect(again.status).toBe(202);
  });
});
