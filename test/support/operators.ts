import type { Operator } from '../../src/domain/operator';

/** An operator as the database layer returns one, for tests that need no database. */

export const OPERATOR_ID = 'op-test';

export function fakeOperator(overrides: Partial<Operator> = {}): Operator {
  return {
    id: OPERATOR_ID,
    name: 'Test operator',
    host: 'smsc.test',
    port: 2775,
    systemId: 'test',
    systemType: '',
    bindType: 'transceiver',
    tls: false,
    windowSize: 10,
    enquireLinkIntervalS: 30,
    labels: {},
    createdAt: '2026-01-01T00:00:00.000Z',
    createdBy: 'test-admin',
    updatedAt: '2026-01-01T00:00:00.000Z',
    updatedBy: 'test-admin',
    status: 'ACTIVE',
    statusReason: null,
    version: 2,
    credentialsVersion: 1,
    tpsLimit: { tpsCap: 50, burstWindowMs: 1000, enforcementMode: 'hard' },
    ...overrides,
  };
}
