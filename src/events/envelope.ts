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

/**
 * The largest event the service commits: NATS's default max_payload (1 MiB) less room for the
 * headers. A change whose event would be larger is refused before it commits
 * (EventTooLargeError), instead of being accepted and then parked in the outbox forever. A NATS
 * server configured with a smaller max_payload still parks such events (docs/runbook.md).
 */
export const EVENT_MAX_BYTES = 1_000_000;

/** A change whose event would not fit a NATS message; `field` is what made it large. */
export class EventTooLargeError extends Error {
  constructor(
    readonly bytes: number,
    readonly field: string,
  ) {
    super(`the change's event would be ${bytes} bytes, more than the ${EVENT_MAX_BYTES} an event may have`);
    this.name = 'EventTooLargeError';
  }
}

/** The member of `data` whose JSON is the largest, followed down through objects: what to shrink. */
export function largestField(data: unknown): string {
  let name = 'body';
  let value = data;
  while (value && typeof value === 'object' && !Array.isArray(value)) {
    const members = Object.entries(value as Record<string, unknown>);
    if (members.length === 0) break;
    const [key, largest] = members.reduce((a, b) =>
      JSON.stringify(b[1] ?? null).length > JSON.stringify(a[1] ?? null).length ? b : a,
    );
    name = key;
    value = largest;
  }
  return name;
}
