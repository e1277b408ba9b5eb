import type { Operator, RoutingRule, TpsLimit } from './operator';
import type { PrefixTable } from './routing';

/**
 * The lines of GET /v1/internal/routing/snapshot (NDJSON), in this order: `snapshot` (where to
 * follow the stream from), every table a live rule uses, their entries in pages, every live
 * operator with its rules, TPS limit and version, then `end`. The guarantee: a consumer that
 * loads them, then consumes the event stream from `streamSequence` and ignores every event
 * whose `version` is not above the snapshot's version of its operator misses and repeats
 * nothing (README "Routing snapshot").
 */
export type SnapshotRecord =
  | { type: 'snapshot'; stream: string; streamSequence: number; takenAt: string }
  | { type: 'prefixTable'; table: PrefixTable }
  | { type: 'prefixTableEntries'; prefixTableId: string; prefixes: string[] }
  | { type: 'operator'; operator: Operator; version: number; routingRules: RoutingRule[]; tpsLimit: TpsLimit | null }
  | { type: 'end'; operators: number; prefixTables: number };
