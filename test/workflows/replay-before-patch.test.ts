import { readFileSync } from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { expectHistoryReplays } from '../support/replay';

/**
 * Runs recorded by the workflow code as it was before health signals were ordered by reportedAt
 * (commit 1fe332b, on the time-skipping server, with the stubs of test/support/time-skipping.ts),
 * each with reports the current rule decides otherwise: an onboarding that took the last report
 * to arrive (AUTH_FAILED, the older) and a rotation that took the first (AUTH_FAILED, where the
 * newest was UP). The current bundle must replay them as written: the runs have no
 * `health-signals-by-reported-at` marker, so `healthByReportedAt()` is false for them. Dropping
 * the patch and applying the rule to every run fails here. Stored as encoded `History` protos
 * (base64): historyToJSON of this SDK version cannot encode what fetchHistory returns.
 */

const RECORDED = ['onboarding-crossed-signals-before-patch', 'rotation-reports-before-patch'];

describe('runs started before the reportedAt rule', () => {
  it.each(RECORDED)('%s replays with the current workflows', async (name) => {
    const encoded = readFileSync(path.resolve(__dirname, `../fixtures/histories/${name}.binpb.b64`), 'utf8');
    const history = temporal.api.history.v1.History.decode(Buffer.from(encoded.trim(), 'base64'));
    expect(history.events.length).toBeGreaterThan(10);
    await expectHistoryReplays(history, name);
  });
});
