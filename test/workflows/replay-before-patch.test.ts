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

type History = temporal.api.history.v1.IHistory;

/** A recorded history of test/fixtures/histories (an encoded History proto, base64). */
function loadHistory(name: string): History {
  const encoded = readFileSync(path.resolve(__dirname, `../fixtures/histories/${name}.binpb.b64`), 'utf8');
  return temporal.api.history.v1.History.decode(Buffer.from(encoded.trim(), 'base64'));
}

/** The activities a history scheduled, in order. */
function scheduledActivities(history: History): string[] {
  return (history.events ?? []).flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
}

/** The patches a recorded history's markers name (the SDK's `core_patch` markers, `patch-data`). */
function patchesOf(history: History): string[] {
  return (history.events ?? []).flatMap((e) => {
    const marker = e.markerRecordedEventAttributes;
    if (marker?.markerName !== 'core_patch') return [];
    const data = marker.details?.['patch-data']?.payloads?.[0]?.data;
    return data ? [(JSON.parse(Buffer.from(data).toString('utf8')) as { id: string }).id] : [];
  });
}

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
    const history = loadHistory(name);
    // Guards the fixture itself: recorded before the patch (no marker), deciding by arrival order.
    const activities = scheduledActivities(history);
    expect(history.events?.some((e) => e.markerRecordedEventAttributes)).toBe(false);
    expect(activities).toContain(chose);
    expect(activities).not.toContain(ruleWouldChoose);
    await expectHistoryReplays(history, name);
  });
});

/**
 * A drain recorded by the workflow code of c39b017 (before `drain-cancel-while-announcing`, on
 * the time-skipping server with the stubs of test/support/time-skipping.ts): NATS down while
 * `draining` was announced, a cancelDrain update accepted meanwhile, carried out once NATS was
 * back. The current bundle must replay it as written: with no marker of that patch, the drain
 * waits for the announce as it did.
 */
describe('a drain cancelled during its announce, before the cancel was carried out at once', () => {
  it('replays with the current workflows', async () => {
    const name = 'drain-cancel-during-announce-before-patch';
    const history = loadHistory(name);
    // Guards the fixture: recorded before the patch, the cancel accepted before the announce ended.
    expect(patchesOf(history)).not.toContain('drain-cancel-while-announcing');
    // …and the guard reads markers at all: this run went through an earlier patch.
    expect(patchesOf(history)).toContain('drain-timeout-after-announce');
    const events = history.events ?? [];
    expect(scheduledActivities(history)).toEqual([
      'beginDrain',
      'recentConnectorReports',
      'publishPendingEvents',
      'cancelDrain',
      'publishPendingEvents',
    ]);
    const announce = events.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'publishPendingEvents',
    )?.eventId;
    const announced = events.findIndex(
      (e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(announce),
    );
    const cancelAccepted = events.findIndex(
      (e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'cancelDrain',
    );
    expect(cancelAccepted).toBeGreaterThan(-1);
    expect(cancelAccepted).toBeLessThan(announced);
    await expectHistoryReplays(history, name);
  });
});

/**
 * Runs recorded by the workflow code of 473e68c (before three patches, on the time-skipping
 * server with the stubs of test/support/time-skipping.ts), each down the path its patch changed:
 * a drain whose step gave up after DRAINING and that failed without restoring ACTIVE; a rotation
 * that failed when Vault refused its last clean-up; an onboarding that compensated when its
 * activation gave up after the bind. With no marker of their patch, the current bundle must
 * replay each as written; applying the drain's or the rotation's patch to every run fails here.
 * The activation's patch changes only the activity's retry policy and scope, which a history
 * does not record: its run replays either way, and guards the rest of that path.
 */
const BEFORE_PATCHES = [
  {
    name: 'drain-step-gives-up-before-patch',
    patch: 'drain-failure-restores-active',
    activities: ['beginDrain', 'recentConnectorReports'],
  },
  {
    name: 'rotation-cleanup-refused-before-patch',
    patch: 'rotation-cleanup-best-effort',
    activities: [
      'prepareRotation',
      'latestCredentialsVersion',
      'promoteStagedCredentials',
      'beginRotation',
      'publishPendingEvents',
      'completeRotation',
      'publishPendingEvents',
      'discardStagedRotation',
    ],
  },
  {
    name: 'onboarding-activation-fails-before-patch',
    patch: 'onboarding-activation-until-done',
    activities: [
      'saveOperator',
      'storeCredentials',
      'recordOperatorCreated',
      'publishPendingEvents',
      'activateOperator',
      'markOnboardingFailed',
      'discardCredentials',
      'publishPendingEvents',
    ],
  },
];

describe('runs down the paths three later patches changed', () => {
  it.each(BEFORE_PATCHES)('$name replays with the current workflows', async ({ name, patch, activities }) => {
    const history = loadHistory(name);
    // Guards the fixture: recorded before the patch, down the path it changed, and failed.
    expect(patchesOf(history)).not.toContain(patch);
    const events = history.events ?? [];
    expect(scheduledActivities(history)).toEqual(activities);
    expect(events.some((e) => e.workflowExecutionFailedEventAttributes)).toBe(true);
    await expectHistoryReplays(history, name);
  });
});
