import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Workflow ids carry the operator id: a second start for the same purpose is refused. */
export const workflowIds = {
  onboarding: (operatorId: string) => `onboarding-${operatorId}`,
  rotation: (operatorId: string) => `credential-rotation-${operatorId}`,
  drain: (operatorId: string) => `drain-${operatorId}`,
};

/** Registered on the server by scripts/stack.sh; lets ops list every run of an operator. */
export const OPERATOR_ID = defineSearchAttributeKey('OperatorId', SearchAttributeType.KEYWORD);
