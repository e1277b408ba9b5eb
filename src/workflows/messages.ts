import { defineQuery, defineSignal, defineUpdate, type QueryDefinition } from '@temporalio/workflow';
import type { HealthStatus, Operator } from '../domain/operator';

/** Messages the API and the health worker send to running workflows, shared by all three. */

/** The connector's view of an operator, as the health worker forwards it. */
export interface ConnectorHealth {
  status: HealthStatus;
  credentialsVersion: number | null;
  inflight: number;
  reportedAt: string;
  /** Which connector instance reported: a drain waits for each. */
  connectorInstance: string;
}

export const connectorHealthSignal = defineSignal<[ConnectorHealth]>('connectorHealth');

/**
 * Answers once the workflow's first step has committed, with the operator as it left it, or
 * fails with that step's refusal (DuplicateOperator, NotFound, Conflict): the API's 202 or 4xx.
 */
export const acceptedUpdate = defineUpdate<Operator>('accepted');

/** Where a workflow is: one of its typed steps, and what the step is waiting for or why it failed. */
export interface StepState<S extends string> {
  step: S;
  detail: string | null;
}

/** A workflow's steps: each one's words for the Temporal UI, and the `currentStep` query typed by them. */
export interface Steps<S extends string> {
  labels: Readonly<Record<S, string>>;
  query: QueryDefinition<StepState<S>>;
}
export type StepOf<T> = T extends Steps<infer S> ? S : never;

export function defineSteps<S extends string>(labels: Readonly<Record<S, string>>): Steps<S> {
  return { labels, query: defineQuery<StepState<S>>('currentStep') };
}
