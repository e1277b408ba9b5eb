/** The event envelope of docs/asyncapi.yaml, shared by every publisher and consumer in this service. */

export const CONFIG_CHANGES = [
  'created',
  'updated',
  'activated',
  'onboarding_failed',
  'routing_updated',
  'tps_updated',
  'credentials_rotated',
  'credentials_rolled_back',
  'draining',
  'drain_cancelled',
  'deleted',
  'prefix_table_updated',
] as const;
export type ConfigChange = (typeof CONFIG_CHANGES)[number];

export const HEALTH_SUBJECT = 'operator.health';

export function configSubject(change: ConfigChange): string {
  return `operator.config.${change}`;
}

export interface EventEnvelope<T = Record<string, unknown>> {
  eventId: string;
  /** The subject the event travels on, e.g. `operator.config.created`. */
  type: string;
  operatorId: string;
  /** The operator's config version after the change: monotonic per operator. */
  version: number;
  occurredAt: string;
  /** Who caused it: a JWT `sub`, or `system:<component>` for automatic changes. */
  actor: string;
  data: T;
}
