import type { HealthTarget } from '../src/db/health-log';
import { DrainSignalThrottle, signalsFor } from '../src/health/signals';
import type { ValidReport } from '../src/health/report';

/** Which waiting workflow hears which report, batch by batch (a pure function). */

const ID = '00000000-0000-4000-8000-000000000001';
const draining: HealthTarget = { id: ID, status: 'DRAINING', version: 3, pendingCredentialsVersion: null };

function valid(connectorInstance: string, inflight: number, second: number): ValidReport {
  const reportedAt = new Date(Date.UTC(2026, 11, 1, 12, 0, second)).toISOString();
  return {
    report: {
      operatorId: ID,
      status: 'UP',
      boundSessions: 1,
      inflight,
      credentialsVersion: 1,
      reportedAt,
      connectorInstance,
    },
    reportedAtMs: Date.parse(reportedAt),
  };
}

describe('signalsFor a draining operator', () => {
  it('forwards every instance, busy or not: its newest report of the batch', () => {
    const batch = [valid('a', 5, 1), valid('b', 2, 2), valid('a', 0, 3)];
    const signals = signalsFor(batch, new Map([[ID, draining]]));
    expect(signals.map((s) => [s.workflowId, s.health.connectorInstance, s.health.inflight])).toEqual([
      [`drain-${ID}`, 'a', 0],
      [`drain-${ID}`, 'b', 2],
    ]);
  });

  it('forwards nothing for an ACTIVE operator that nothing waits on', () => {
    expect(signalsFor([valid('a', 0, 1)], new Map([[ID, { ...draining, status: 'ACTIVE' }]]))).toEqual([]);
  });
});

describe('DrainSignalThrottle', () => {
  const targets = new Map([[ID, draining]]);
  /** What reaches the drain of one report of instance `a`, marked sent when it does. */
  const passes = (throttle: DrainSignalThrottle, inflight: number, second: number, sent = true) => {
    const kept = throttle.keep(signalsFor([valid('a', inflight, second)], targets));
    if (!sent) throttle.unsent(kept);
    return kept.length === 1;
  };

  it('forwards what can change the verdict, and a busy instance once per half window', () => {
    const throttle = new DrainSignalThrottle(30_000);
    expect(passes(throttle, 5, 0)).toBe(true); // the instance's first
    expect(passes(throttle, 4, 2)).toBe(false); // still busy, 2 s on
    expect(passes(throttle, 3, 29)).toBe(false);
    expect(passes(throttle, 3, 30)).toBe(true); // half the window since the last one sent
    expect(passes(throttle, 0, 32)).toBe(true); // 0: what a drain waits for
    expect(passes(throttle, 0, 34)).toBe(false); // 0 again: the drain holds one
    expect(passes(throttle, 1, 36)).toBe(true); // busy again after a 0
    expect(passes(throttle, 2, 38)).toBe(false);
  });

  it('forwards again a report whose signal was not sent (its batch failed)', () => {
    const throttle = new DrainSignalThrottle(30_000);
    expect(passes(throttle, 0, 0)).toBe(true);
    expect(passes(throttle, 5, 2, false)).toBe(true); // busy again; the batch fails
    expect(passes(throttle, 5, 2)).toBe(true); // its retry still goes
    expect(passes(throttle, 5, 4)).toBe(false);
  });

  it('judges the next report against the newest sent, whatever order two batches sent theirs in', () => {
    const throttle = new DrainSignalThrottle(30_000);
    expect(passes(throttle, 5, 0)).toBe(true);
    expect(passes(throttle, 0, 12)).toBe(true); // the later batch, sent first
    expect(passes(throttle, 5, 10)).toBe(true); // the earlier one (the drain keeps the report at 12)
    expect(passes(throttle, 3, 14)).toBe(true); // busy again after the 0 the drain holds
  });

  it('judges a batch against another still being sent (batches in flight together)', () => {
    const throttle = new DrainSignalThrottle(30_000);
    expect(passes(throttle, 5, 0)).toBe(true);
    const first = throttle.keep(signalsFor([valid('a', 0, 2)], targets)); // its send still in flight
    const second = throttle.keep(signalsFor([valid('a', 3, 4)], targets)); // busy again: must go too
    expect([first.length, second.length]).toEqual([1, 1]);
  });

  it("lets a drain's first 0 through at once after a 0 from before it began", () => {
    const throttle = new DrainSignalThrottle(30_000);
    const since = Date.UTC(2026, 11, 1, 12, 0, 5);
    const zeroAt = (second: number) =>
      throttle.keep(signalsFor([valid('a', 0, second)], new Map([[ID, { ...draining, changedAtMs: since }]]))).length;
    expect(zeroAt(0)).toBe(1); // before this drain (a drain before it, or handled late)
    expect(zeroAt(6)).toBe(1); // this drain's first 0: it counts, where the one before does not
    expect(zeroAt(8)).toBe(0);
  });

  it('leaves the signals of other workflows alone', () => {
    const onboarding: HealthTarget = { ...draining, status: 'ONBOARDING' };
    const throttle = new DrainSignalThrottle(30_000);
    for (let second = 0; second < 5; second++) {
      expect(throttle.keep(signalsFor([valid('a', 3, second)], new Map([[ID, onboarding]])))).toHaveLength(1);
    }
  });
});
