import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { HealthStatus, Operator } from '../domain/operator';

/** Messages the API and the health worker send to running workflows. */

/** The connector's view of an operator, as the health worker forwards it. */
export interface ConnectorHealth {
  status: HealthStatus;
  credentialsVersion: number | null;
  inflight: number;
  reportedAt: string;
}

export const connectorHealthSignal = defineSignal<[ConnectorHealth]>('connectorHealth');

/** Answers once the operator row exists, or fails with DuplicateOperator: the API's 202 or 409. */
export const operatorSavedUpdate = defineUpdate<Operator>('operatorSaved');

/** The step a workflow is at, in words ops can read. */
export const currentStepQuery = defineQuery<string>('currentStep');

/** Answers once the drain has marked the operator DRAINING (the API's 202). */
export const drainStartedUpdate = defineUpdate<Operator>('drainStarted');

/**
 * Stops a drain before its soft delete and answers with the operator ACTIVE again; rejected
 * (by its validator, so nothing enters the history) once the soft delete has begun.
 */
export const cancelDrainUpdate = defineUpdate<Operator, [{ actor: string }]>('cancelDrain');
