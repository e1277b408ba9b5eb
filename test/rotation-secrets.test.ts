import { credentialsPath } from '../src/domain/credentials';
import type { EventEnvelope } from '../src/events/envelope';
import { connectorHealthSignal } from '../src/workflows/messages';
import { startChildWorker, type ChildWorker } from './support/child-worker';
import { EventWatcher } from './support/events';
import { startHarness, type Harness } from './support/harness';
import { redisEntries } from './support/secrets';
import { newPassword, onboardActive, report, rotate, rotateAccepted, textOf, waitForType } from './support/rotation';
import { workflowIds } from '../src/domain/workflow-ids';

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
      postgres: await dumpOpsSchema(h),
      history: await historiesOf(h, [...operators, pending.operator.id]),
      events: JSON.stringify(operators.flatMap((id) => events.of(id)) satisfies EventEnvelope[]),
      redis: await dumpRedis(h),
      errors: errorBodies.join('\n'),
    };
    // Each place holds what it should, so a miss below is not an empty search.
    expect(places.logs).toContain(`/v1/admin/operators/${rotatedId}/credentials/rotate`);
    expect(places.logs).toContain(ok.workflowId);
    expect(places.postgres).toContain('credentials_rolled_back');
    expect(places.history).toContain('"stagedVersion":1');
    expect(places.events).toContain('"rejectedCredentialsVersion":2');
    expect(places.errors).toContain('"status":409');
    for (const [place, text] of Object.entries(places)) {
      for (const c of canaries) {
        if (text.includes(c)) throw new Error(`canary password found in ${place}`);
      }
    }
  });
});

/** Every row of every table in schema ops, as JSON text. */
async function dumpOpsSchema(h: Harness): Promise<string> {
  const { db } = h.resources;
  const { rows: tables } = await db.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'ops' AND table_type = 'BASE TABLE'`,
  );
  const parts: string[] = [];
  for (const { table_name } of tables) {
    const { rows } = await db.query(`SELECT row_to_json(t)::text AS r FROM ops."${table_name}" t`);
    // One by one: a table of a million entries is too many arguments for one push.
    for (const row of rows as Array<{ r: string }>) parts.push(row.r);
  }
  return parts.join('\n');
}

/** The decoded history of every workflow run of these operators. */
async function historiesOf(h: Harness, operatorIds: string[]): Promise<string> {
  const { temporal } = h.resources;
  const parts: string[] = [];
  for (const id of operatorIds) {
    // The latest runs by id, whatever the (eventually consistent) visibility list says yet.
    for (const workflowId of [workflowIds.onboarding(id), workflowIds.rotation(id)]) {
      const history = await temporal.workflow
        .getHandle(workflowId)
        .fetchHistory()
        .catch(() => undefined);
      if (history) parts.push(...textOf(history));
    }
    for await (const wf of temporal.workflow.list({ query: `OperatorId = '${id}'` })) {
      const history = await temporal.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
      parts.push(...textOf(history));
    }
  }
  return parts.join('\n');
}

/** Every value in Redis (the instance is shared: all of it, whoever wrote it). */
async function dumpRedis(h: Harness): Promise<string> {
  return (await redisEntries(h.resources.redis)).map(({ key, value }) => `${key}\n${value}`).join('\n');
}
