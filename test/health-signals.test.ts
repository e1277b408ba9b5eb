import type { HealthTarget } from '../src/db/health-log';
import { signalsFor } from '../src/health/signals';
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
