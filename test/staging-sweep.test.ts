import { randomUUID } from 'node:crypto';
import { createTemporalClient } from '../src/clients/temporal';
import { createKvStore, type KvStore } from '../src/clients/vault';
import { loadConfig } from '../src/platform/config';
import { stagedCredentialsPath } from '../src/domain/credentials';
import { OPERATOR_ID, workflowIds } from '../src/domain/workflow-ids';
import { sweepStagedCredentials } from '../src/services/credentials-staging';
import type { Client } from '@temporalio/client';

/** Staged passwords left by an API process that died before starting their workflow. */
describe('staged credentials sweep', () => {
  const config = loadConfig();
  let kv: KvStore;
  let temporal: Client;

  beforeAll(async () => {
    kv = await createKvStore(config.vault);
    temporal = await createTemporalClient(config.temporal);
  });
  afterAll(() => temporal.connection.close());

  it('destroys an orphaned staged password and keeps one a running onboarding owns', async () => {
    const orphan = randomUUID();
    const owned = randomUUID();
    await kv.write(stagedCredentialsPath(orphan), { system_id: 'acct', password: 'orphan1' });
    await kv.write(stagedCredentialsPath(owned), { system_id: 'acct', password: 'owned1' });
    // A running onboarding (on a queue no worker polls) owns its staged entry.
    const handle = await temporal.workflow.start('onboardOperator', {
      workflowId: workflowIds.onboarding(owned),
      taskQueue: `staging-sweep-test-${owned}`,
      args: [{}],
      typedSearchAttributes: [{ key: OPERATOR_ID, value: owned }],
    });
    try {
      const young = await sweepStagedCredentials(kv, temporal, { onlyOperators: [orphan, owned] });
      expect(young).toEqual([]);
      expect(await kv.currentVersion(stagedCredentialsPath(orphan))).toBe(1);

      const swept = await sweepStagedCredentials(kv, temporal, { maxAgeMs: 0, onlyOperators: [orphan, owned] });
      expect(swept).toEqual([orphan]);
      expect(await kv.currentVersion(stagedCredentialsPath(orphan))).toBeUndefined();
      expect(await kv.currentVersion(stagedCredentialsPath(owned))).toBe(1);
    } finally {
      await handle.terminate('test over');
    }
    expect(await sweepStagedCredentials(kv, temporal, { maxAgeMs: 0, onlyOperators: [owned] })).toEqual([owned]);
    expect(await kv.currentVersion(stagedCredentialsPath(owned))).toBeUndefined();
  });
});
