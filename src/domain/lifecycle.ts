import { OPERATOR_STATUSES, type OperatorStatus } from './operator';

/**
 * The operator lifecycle of the README's "Operator lifecycle" section, in one place: every status
 * change goes through `assertTransition` (src/db/operators.ts `commitChange` calls it under the
 * row lock), and every "may this operator do X now" question is answered here.
 */

const TRANSITIONS: Record<OperatorStatus, readonly OperatorStatus[]> = {
  ONBOARDING: ['ACTIVE', 'ONBOARDING_FAILED'],
  ACTIVE: ['DRAINING'],
  DRAINING: ['DELETED', 'ACTIVE'],
  ONBOARDING_FAILED: [],
  DELETED: [],
};

export { OPERATOR_STATUSES };

export function canTransition(from: OperatorStatus, to: OperatorStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** A status change the lifecycle does not allow; the API answers it with 409. */
export class IllegalTransitionError extends Error {
  constructor(
    readonly operatorId: string,
    readonly from: OperatorStatus,
    readonly to: OperatorStatus,
  ) {
    const allowed = TRANSITIONS[from];
    super(
      `operator ${operatorId} is ${from} and cannot become ${to}` +
        (allowed.length > 0 ? ` (from ${from} only ${allowed.join(' or ')})` : ` (${from} is final)`),
    );
    this.name = 'IllegalTransitionError';
  }
}

export function assertTransition(operatorId: string, from: OperatorStatus, to: OperatorStatus): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(operatorId, from, to);
}

/** An operator that still exists for its peers: neither given up at onboarding nor deleted. */
export function isLive(status: OperatorStatus): boolean {
  return status !== 'ONBOARDING_FAILED' && status !== 'DELETED';
}

/**
 * The operator was activated at some point: ACTIVE, or on its way out since (only an ACTIVE
 * operator can be drained). An onboarding that finds one has succeeded, whatever failed after.
 */
export function wasActivated(status: OperatorStatus): boolean {
  return status === 'ACTIVE' || status === 'DRAINING' || status === 'DELETED';
}

/** Metadata may change until the operator reaches a final state. */
export function acceptsChanges(status: OperatorStatus): boolean {
  return isLive(status);
}

/** One credential rotation at a time, and only while ACTIVE. */
export function canRotateCredentials(status: OperatorStatus): boolean {
  return status === 'ACTIVE';
}

/** Why an operator in `status` may not do `what`: the text of a 409. */
export function refusal(operatorId: string, status: OperatorStatus, what: string): string {
  return `Operator ${operatorId} is ${status}; ${what}.`;
}
