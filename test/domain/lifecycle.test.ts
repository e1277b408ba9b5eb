import {
  acceptsChanges,
  assertTransition,
  canRotateCredentials,
  canTransition,
  IllegalTransitionError,
  isLive,
  wasActivated,
  OPERATOR_STATUSES,
} from '../../src/domain/lifecycle';
import type { OperatorStatus } from '../../src/domain/operator';

/** The operator lifecycle (README "Operator lifecycle"), pair by pair. */

const ALLOWED: ReadonlyArray<[OperatorStatus, OperatorStatus]> = [
  ['ONBOARDING', 'ACTIVE'],
  ['ONBOARDING', 'ONBOARDING_FAILED'],
  ['ACTIVE', 'DRAINING'],
  ['DRAINING', 'DELETED'],
  ['DRAINING', 'ACTIVE'],
];
const isAllowed = (from: OperatorStatus, to: OperatorStatus) => ALLOWED.some(([f, t]) => f === from && t === to);
const pairs = OPERATOR_STATUSES.flatMap((from) =>
  OPERATOR_STATUSES.map((to): [OperatorStatus, OperatorStatus] => [from, to]),
);

describe('operator lifecycle', () => {
  it('knows exactly the five statuses of the README, so the pairs below are every pair', () => {
    expect([...OPERATOR_STATUSES].sort()).toEqual(['ACTIVE', 'DELETED', 'DRAINING', 'ONBOARDING', 'ONBOARDING_FAILED']);
  });

  it.each(pairs)('%s → %s is allowed exactly when the lifecycle says so', (from, to) => {
    expect(canTransition(from, to)).toBe(isAllowed(from, to));
    if (isAllowed(from, to)) {
      expect(() => assertTransition('op-1', from, to)).not.toThrow();
    } else {
      const refusal = (() => {
        try {
          assertTransition('op-1', from, to);
        } catch (err) {
          return err;
        }
        return undefined;
      })();
      expect(refusal).toBeInstanceOf(IllegalTransitionError);
      expect(refusal).toMatchObject({ operatorId: 'op-1', from, to });
    }
  });

  it('says what is allowed instead, or that the state is final', () => {
    expect(() => assertTransition('op-1', 'ACTIVE', 'DELETED')).toThrow(
      'operator op-1 is ACTIVE and cannot become DELETED (from ACTIVE only DRAINING)',
    );
    expect(() => assertTransition('op-1', 'DELETED', 'ACTIVE')).toThrow(
      'operator op-1 is DELETED and cannot become ACTIVE (DELETED is final)',
    );
  });

  it.each(OPERATOR_STATUSES)('answers what a %s operator may do', (status) => {
    const live = status !== 'ONBOARDING_FAILED' && status !== 'DELETED';
    expect(isLive(status)).toBe(live);
    expect(acceptsChanges(status)).toBe(live);
    expect(canRotateCredentials(status)).toBe(status === 'ACTIVE');
  });

  it.each(OPERATOR_STATUSES)('%s says whether the operator was ever activated', (status) => {
    expect(wasActivated(status)).toBe(['ACTIVE', 'DRAINING', 'DELETED'].includes(status));
  });
});
