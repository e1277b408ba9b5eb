import { credentialsPath } from '../src/domain/credentials';
import type { EventEnvelope } from '../src/events/envelope';
import { connectorHealthSignal } from '../src/workflows/messages';
import { startChildWorker, type ChildWorker } from './support/child-worker';
import { EventWatcher } from './support/events';
import { startHarness, type Harness } from './support/harness';
import { dumpOpsSchema, dumpRedis, historiesOf } from './support/secrets';
import { newPassword, onboardActive, report, rotate, rotateAccepted, waitForType } from './support/rotation';

// Everything at its most talkative: the API in this process, the worker in a child process.
process.env.LOG_LEVEL = 'trace';
process.env.ROTATION_BIND_TIMEOUT_S ??= '45';

/**
 * Canary passwords through every rotation path (success, AUTH_FAILED, timeout, refusals); none
 * may appear anywhere but Vault: logs, PostgreSQL, Temporal history, events, Redis, error bodies.
 */
describe('a rotated password lives only in Vault', () => {
  let h: Harness;
  let events: EventWatcher;
  let worker: ChildWorker;
  let apiLog = '';
  const writeStdout = process.stdout.write.bind(process.stdout);

  beforeAll(async () => {
    // pino writes through process.stdout when it has been replaced before the logger exists.
    process.stdout.write = ((chunk: string | Uint8Array) => {
      apiLog += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      return true;
    }) as typeof process.stdout.write;
    h = await startHarness({ worker: false });
    events = await EventWatcher.start(h.resources.nats, h.config.nats.stream);
    worker = await startChildWorker({ TEMPORAL_TASK_QUEUE: h.config.temporal.taskQueue, LOG_LEVEL: 'trace' });
  });
  afterAll(async () => {
    process.stdout.write = writeStdout;
    await worker?.stop();
    await events?.stop();
    await h?.stop();
  });

  it('keeps canaries out of logs, PostgreSQL, history, events, Redis and error bodies on every path', async () => {
    const canaries: string[] = [];
    const canary = () => {
      const c = newPassword('C');
      canaries.push(c);
      return c;
    };
    const errorBodies: string[] = [];
    const operators: string[] = [];

    // Success, with a refused second rotation (409) and an Idempotency-Key on the way.
    const { id: rotatedId } = await onboardActive(h);
    operators.push(rotatedId);
    const okRes = await rotate(h, rotatedId, canary(), { 'Idempotency-Key': `canary-${rotatedId}` });
    expect(okRes.status).toBe(202);
    const ok = (await okRes.json()) as { workflowId: string; runId: string };
    await waitForType(events, rotatedId, 'operator.config.credentials_rotated');
    const refused = await rotate(h, rotatedId, canary());
    expect(refused.status).toBe(409);
    errorBodies.push(await refused.text());
    const okHandle = h.resources.temporal.workflow.getHandle(ok.workflowId, ok.runId);
    await okHandle.signal(connectorHealthSignal, report('UP', 2));
    await okHandle.result();

    // AUTH_FAILED rollback.
    const { id: rejectedId } = await onboardActive(h);
    operators.push(rejectedId);
    const rejected = await rotateAccepted(h, rejectedId, canary());
    await waitForType(events, rejectedId, 'operator.config.credentials_rotated');
    const rejectedHandle = h.resources.temporal.workflow.getHandle(rejected.workflowId, rejected.runId);
    await rejectedHandle.signal(connectorHealthSignal, report('AUTH_FAILED', 2));
    await expect(rejectedHandle.result()).rejects.toThrow();

    // Timeout rollback.
    const { id: silentId } = await onboardActive(h);
    operators.push(silentId);
    h.config.temporal.rotationBindTimeoutS = 2;
    const silent = await rotateAccepted(h, silentId, canary()).finally(() => {
      h.config.temporal.rotationBindTimeoutS = 45;
    });
    await expect(h.resources.temporal.workflow.getHandle(silent.workflowId, silent.runId).result()).rejects.toThrow();

    // Refusals: too long, and an operator that is not ACTIVE (still ONBOARDING).
    const tooLong = await rotate(h, rotatedId, `${canary()}x`);
    expect(tooLong.status).toBe(400);
    errorBodies.push(await tooLong.text());
    const onboarding = await h.api('/operators', {
      method: 'POST',
      json: {
        name: 'n',
        host: `h-${rotatedId}.example.net`,
        port: 2775,
        systemId: 's',
        password: 'p',
        bindType: 'transceiver',
      },
    });
    const pending = (await onboarding.json()) as { operator: { id: string }; workflowId: string };
    const notActive = await rotate(h, pending.operator.id, canary());
    expect(notActive.status).toBe(409);
    errorBodies.push(await notActive.text());
    await h.resources.temporal.workflow.getHandle(pending.workflowId).cancel();

    // The canaries did reach Vault: the search below looks for something that exists.
    expect((await h.resources.kv.read(credentialsPath(rotatedId)))?.data.password).toBe(canaries[0]);
    expect((await h.resources.kv.read(credentialsPath(rejectedId), 2))?.data.password).toBe(canaries[2]);
    expect((await h.resources.kv.read(credentialsPath(silentId), 2))?.data.password).toBe(canaries[3]);

    const places: Record<string, string> = {
      logs: apiLog + worker.output(),
      postgres: await dumpOpsSchema(h.resources.db),
      history: await historiesOf(h.resources.temporal, [...operators, pending.operator.id]),
      events: JSON.stringify(operators.flatMap((id) => events.of(id)) satisfies EventEnvelope[]),
      redis: await dumpRedis(h.resources.redis),
      errors: errorBodies.join('\n'),
    };
    // Each place holds what it should, so a miss below is not an empty search (booleans: a failed
    // toContain would print the whole dump).
    expect(places.logs?.includes(`/v1/admin/operators/${rotatedId}/credentials/rotate`)).toBe(true);
    expect(places.logs?.includes(ok.workflowId)).toBe(true);
    expect(places.postgres?.includes('credentials_rolled_back')).toBe(true);
    expect(places.history?.includes('"stagedVersion":1')).toBe(true);
    expect(places.events?.includes('"rejectedCredentialsVersion":2')).toBe(true);
    expect(places.errors?.includes('"status":409')).toBe(true);
    for (const [place, text] of Object.entries(places)) {
      for (const c of canaries) {
        if (text.includes(c)) throw new Error(`canary password found in ${place}`);
      }
    }
  });
});
