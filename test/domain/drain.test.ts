import { drainVerdict, recordReport, type InstanceReports } from '../../src/domain/drain';

/** The drain rule on its own: which reports let a drain soft-delete, and when the verdict can change. */

const BEGAN = 1_000_000;
const WINDOW = 60_000;
const at = (nowMs: number) => ({ beganAtMs: BEGAN, nowMs, windowMs: WINDOW });

function reports(...entries: Array<[string, number, number]>): InstanceReports {
  const held: InstanceReports = new Map();
  for (const [instance, inflight, reportedAtMs] of entries) recordReport(held, instance, { inflight, reportedAtMs });
  return held;
}

describe('drainVerdict', () => {
  it('is drained when every recent instance reported 0 after the drain began', () => {
    expect(drainVerdict(reports(['a', 0, BEGAN + 1], ['b', 0, BEGAN + 2]), at(BEGAN + 10))).toMatchObject({
      drained: true,
      waitingFor: [],
    });
  });

  it('does not count a 0 stamped before the drain began, or at the same instant', () => {
    expect(drainVerdict(reports(['a', 0, BEGAN - 1]), at(BEGAN + 10)).drained).toBe(false);
    expect(drainVerdict(reports(['a', 0, BEGAN]), at(BEGAN + 10)).waitingFor).toEqual(['a']);
  });

  it('waits for an instance that still has messages in flight', () => {
    expect(drainVerdict(reports(['a', 0, BEGAN + 1], ['b', 3, BEGAN + 1]), at(BEGAN + 10))).toMatchObject({
      drained: false,
      waitingFor: ['b'],
    });
  });

  it('stops waiting for an instance silent for longer than the window, and says when', () => {
    const held = reports(['a', 0, BEGAN + 1], ['b', 3, BEGAN - 5_000]);
    const verdict = drainVerdict(held, at(BEGAN + 10));
    expect(verdict).toMatchObject({ drained: false, changesAtMs: BEGAN - 5_000 + WINDOW + 1 });
    expect(drainVerdict(held, at(BEGAN - 5_000 + WINDOW)).drained).toBe(false);
    expect(drainVerdict(held, at(BEGAN - 5_000 + WINDOW + 1)).drained).toBe(true);
  });

  it('is not drained with no instance in the window at all', () => {
    expect(drainVerdict(new Map(), at(BEGAN + 10))).toEqual({ drained: false, waitingFor: [], changesAtMs: undefined });
    expect(drainVerdict(reports(['a', 0, BEGAN + 1]), at(BEGAN + 1 + WINDOW + 1)).drained).toBe(false);
  });

  it('judges each instance by its newest report, whatever the order they arrive in', () => {
    const held = reports(['a', 0, BEGAN + 5], ['a', 7, BEGAN + 2]);
    expect(drainVerdict(held, at(BEGAN + 10)).drained).toBe(true);
    recordReport(held, 'a', { inflight: 2, reportedAtMs: BEGAN + 6 });
    expect(drainVerdict(held, at(BEGAN + 10)).waitingFor).toEqual(['a']);
  });
});
