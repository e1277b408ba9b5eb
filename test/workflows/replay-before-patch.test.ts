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

/** Each history, with the compensation its arrival order chose (the rule would choose otherwise). */
const RECORDED = [
  {
    name: 'onboarding-crossed-signals-before-patch',
    chose: 'markOnboardingFailed',
    ruleWouldChoose: 'activateOperator',
  },
  { name: 'rotation-reports-before-patch', chose: 'rollbackRotation', ruleWouldChoose: 'completeRotation' },
];

describe('runs started before the reportedAt rule', () => {
  it.each(RECORDED)('$name replays with the current workflows', async ({ name, chose, ruleWouldChoose }) => {
    const encoded = readFileSync(path.resolve(__dirname, `../fixtures/histories/${name}.binpb.b64`), 'utf8');
    const history = temporal.api.history.v1.History.decode(Buffer.from(encoded.trim(), 'base64'));
    // Guards the fixture itself: recorded before the patch (no marker), deciding by arrival order.
    const activities = (history.events ?? []).flatMap((e) => {
      const type = e.activityTaskScheduledEventAttributes?.activityType?.name;
      return type ? [type] : [];
    });
    expect(history.events?.some((e) => e.markerRecordedEventAttributes)).toBe(false);
    expect(activities).toContain(chose);
    expect(activities).not.toContain(ruleWouldChoose);
    await expectHistoryReplays(history, name);
  });
});
