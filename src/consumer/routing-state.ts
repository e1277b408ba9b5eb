import { DeliverPolicy, type NatsConnection } from 'nats';
import { tablesUsedBy, type Operator, type RoutingRule, type TpsLimit } from '../domain/operator';
import {
  compareExcluded,
  exclusionOf,
  matchingRule,
  prefixesOf,
  rankCandidates,
  type ExclusionReason,
  type MatchingRule,
  type Rank,
} from '../domain/route-order';
import { normalizePrefix, type PrefixTableChange } from '../domain/routing';
import type { SnapshotRecord } from '../domain/routing-snapshot';
import type { EventEnvelope } from '../events/envelope';
import { PrefixIndex } from './prefix-index';

/**
 * For a routing engine: the routing configuration in memory, loaded from
 * GET /v1/internal/routing/snapshot and kept current from the event stream, with a
 * longest-prefix index that answers like the admin API's explain (the same route-order
 * functions, src/domain/route-order.ts). Copy it or import it.
 *
 * The guarantee it relies on: load the snapshot, follow the stream from its `streamSequence`,
 * and apply only events whose `version` is above the operator's version held: nothing is
 * missed, nothing applied twice. The stream keeps each operator's versions in order, not the
 * order of commits across operators: a table's events reach it through many operators, so a
 * table's listed change is applied only to the content it was made from (else the table is read
 * again).
 */

export interface OperatorRouting {
  operator: Operator;
  version: number;
  /** Filed in the index as they are: never changed in place. */
  routingRules: readonly RoutingRule[];
  tpsLimit: TpsLimit | null;
}

export interface TableState {
  version: number;
  /** Of the prefixes held: what a listed change names as the content it was made from. */
  contentHash: string;
  prefixes: ReadonlySet<string>;
}

/**
 * Reads one table again (GET /v1/internal/prefix-tables/{id}/entries) when an event says it was
 * replaced or a rule takes it up; `undefined` when it is gone (a 404). An old event may name a
 * table deleted since: the events after it no longer use it, so it is simply not held.
 */
export type TableLoader = (
  prefixTableId: string,
  /** The version held, if any: answer 'unchanged' when it is still the current one (a 304). */
  held?: { version: number },
) => Promise<{ version: number; contentHash: string; prefixes: string[] } | 'unchanged' | undefined>;

type HeldTable = { version: number; contentHash: string; prefixes: Set<string> };

export class RoutingState {
  private heldOperators = new Map<string, OperatorRouting>();
  private heldTables = new Map<string, HeldTable>();
  /** Kept in step with every operator and table held: all their changes go through it. */
  private index = new PrefixIndex();
  /**
   * With `recordApplied`, the versions applied per operator, in order: what a test checks for
   * "each change once". Off by default: a routing engine runs for months.
   */
  readonly applied = new Map<string, number[]>();

  constructor(
    private readonly loadTable: TableLoader,
    private readonly options: { recordApplied?: boolean } = {},
  ) {}

  get operators(): ReadonlyMap<string, OperatorRouting> {
    return this.heldOperators;
  }

  get tables(): ReadonlyMap<string, TableState> {
    return this.heldTables;
  }

  /**
   * Loads a snapshot in place of whatever was held (a reload after a long disconnect starts
   * clean: an operator deleted meanwhile is in neither the snapshot nor the events after it);
   * returns the stream sequence to follow the events from. Loaded apart and taken over once
   * whole: until then, and after a load cut short (it throws), explain answers from what was held.
   */
  async loadSnapshot(records: AsyncIterable<SnapshotRecord>): Promise<number> {
    const loaded = new RoutingState(this.loadTable, this.options);
    const from = await loaded.fill(records);
    this.heldOperators = loaded.heldOperators;
    this.heldTables = loaded.heldTables;
    this.index = loaded.index;
    this.applied.clear();
    return from;
  }

  /** Fills an empty state from a snapshot's records; throws on a snapshot cut short. */
  private async fill(records: AsyncIterable<SnapshotRecord>): Promise<number> {
    let from: number | undefined;
    let ended = false;
    for await (const record of records) {
      switch (record.type) {
        case 'snapshot':
          from = record.streamSequence;
          break;
        case 'prefixTable':
          this.putTable(record.table.id, record.table, []);
          break;
        case 'prefixTableEntries': {
          const table = this.heldTables.get(record.prefixTableId);
          if (table) this.changeEntries(record.prefixTableId, table, record.prefixes, []);
          break;
        }
        case 'operator':
          // Version 0: saved by an onboarding but not announced. Its `created` event brings it
          // in; until then no table event reaches it, so tables held for it alone would go stale.
          if (record.version === 0) break;
          this.putOperator(record.operator.id, {
            operator: record.operator,
            version: record.version,
            routingRules: record.routingRules,
            tpsLimit: record.tpsLimit,
          });
          break;
        case 'end':
          ended = true;
      }
    }
    if (from === undefined || !ended) throw new Error('the snapshot was cut short: load it again');
    this.dropUnusedTables();
    return from;
  }

  /** Applies one config event unless its version is not above the one held; says whether it did. */
  async apply(event: EventEnvelope): Promise<boolean> {
    const held = this.heldOperators.get(event.operatorId);
    if (held && event.version <= held.version) return false;
    const change = event.type.replace(/^operator\.config\./, '');
    const data = event.data as Record<string, unknown>;
    // Not held and not introduced by this event: not live when the snapshot was taken, and nothing routes to it.
    if (!held && !data.operator) return false;
    // A copy, swapped in once the event is applied whole: a table reload that fails (and is
    // retried) leaves what explain sees as it was.
    const next: OperatorRouting = held
      ? { ...held }
      : { operator: data.operator as Operator, version: 0, routingRules: [], tpsLimit: null };
    if (data.operator) next.operator = data.operator as Operator;
    if (change === 'created' || change === 'routing_updated') {
      next.routingRules = data.routingRules as RoutingRule[];
      await this.takeUpTables(held?.routingRules ?? [], next.routingRules);
    }
    if (change === 'created') next.tpsLimit = next.operator.tpsLimit;
    if (change === 'tps_updated') next.tpsLimit = data.tpsLimit as TpsLimit;
    if (change === 'prefix_table_updated') await this.applyTableChange(data as unknown as PrefixTableChange);
    next.version = event.version;
    // Gone for routing: deleted, or given up at onboarding.
    if (change === 'deleted' || change === 'onboarding_failed') this.putOperator(event.operatorId, undefined);
    else this.putOperator(event.operatorId, next);
    // A table no held rule uses gets no events: a copy kept would go stale, so it is dropped
    // (and loaded again if a rule takes it up).
    if (change === 'routing_updated' || change === 'deleted' || change === 'onboarding_failed') this.dropUnusedTables();
    if (this.options.recordApplied) {
      const versions = this.applied.get(event.operatorId);
      if (versions) versions.push(event.version);
      else this.applied.set(event.operatorId, [event.version]);
    }
    return true;
  }

  /**
   * The candidates for a number at a time, ranked, and the matching rules that are out. The
   * number as explain takes it: 1–15 digits, a leading `+` dropped; anything else throws a
   * RangeError. The held operators are the announced ones: an operator still onboarding at
   * version 0 (no `created` event yet) is not here, where explain lists its rules as out.
   */
  explain(
    destination: string,
    at: Date,
  ): { ranks: Rank<MatchingRule>[]; excluded: Array<{ rule: MatchingRule; reason: ExclusionReason }> } {
    const number = normalizePrefix(destination);
    if (number === undefined) {
      throw new RangeError(
        `not a destination number: 1 to 15 digits, a leading + allowed (${JSON.stringify(destination)})`,
      );
    }
    const candidates: MatchingRule[] = [];
    const excluded: Array<{ rule: MatchingRule; reason: ExclusionReason }> = [];
    for (const { indexed, prefix } of this.index.matches(prefixesOf(number))) {
      const { operator } = this.heldOperators.get(indexed.operatorId)!;
      const matching = matchingRule(operator, indexed.rule, prefix);
      const reason = exclusionOf(matching, at);
      if (reason) excluded.push({ rule: matching, reason });
      else candidates.push(matching);
    }
    excluded.sort((a, b) => compareExcluded(a.rule, b.rule));
    return { ranks: rankCandidates(candidates), excluded };
  }

  /** Holds an operator as given (undefined: no longer), its rules filed in the index. */
  private putOperator(id: string, routing: OperatorRouting | undefined): void {
    const before = this.heldOperators.get(id)?.routingRules ?? [];
    const after = routing?.routingRules ?? [];
    // Most events leave the rules as they were (the same array): re-filing them would cost a
    // table shared by N operators O(N) per operator's event.
    if (after !== before) this.index.replaceRules(id, before, after);
    if (routing) this.heldOperators.set(id, routing);
    else this.heldOperators.delete(id);
  }

  /** Holds a table as given, its entries filed in the index (in place of any held before). */
  private putTable(
    id: string,
    { version, contentHash }: { version: number; contentHash: string },
    prefixes: readonly string[],
  ): void {
    this.dropTable(id);
    const table = { version, contentHash, prefixes: new Set<string>() };
    this.heldTables.set(id, table);
    this.changeEntries(id, table, prefixes, []);
  }

  private dropTable(id: string): void {
    const held = this.heldTables.get(id);
    if (held) for (const p of held.prefixes) this.index.removeTablePrefix(id, p);
    this.heldTables.delete(id);
  }

  private changeEntries(
    id: string,
    table: { prefixes: Set<string> },
    added: readonly string[],
    removed: readonly string[],
  ): void {
    for (const p of removed) {
      if (table.prefixes.delete(p)) this.index.removeTablePrefix(id, p);
    }
    for (const p of added) {
      table.prefixes.add(p);
      this.index.addTablePrefix(id, p);
    }
  }

  private dropUnusedTables(): void {
    const used = new Set([...this.heldOperators.values()].flatMap((o) => tablesUsedBy(o.routingRules)));
    for (const id of [...this.heldTables.keys()]) if (!used.has(id)) this.dropTable(id);
  }

  /**
   * Reads the tables an operator's rules take up, held or not: one held for another operator
   * whose events are behind (its rules dropped the table in PostgreSQL already) may have missed
   * changes made while no operator used it, and those publish no event.
   */
  private async takeUpTables(before: readonly RoutingRule[], after: readonly RoutingRule[]): Promise<void> {
    const had = new Set(tablesUsedBy(before));
    for (const id of tablesUsedBy(after)) if (!had.has(id)) await this.reload(id);
  }

  private async applyTableChange(change: PrefixTableChange): Promise<void> {
    const table = this.heldTables.get(change.prefixTableId);
    // Several operators share a table: the first of their events brings it up to date.
    if (table && table.version >= change.tableVersion) return;
    // A listed change is what changed from the content it names (a rename in between bumped
    // the version, not the content). Holding other content (another operator's event for an
    // entries change in between has not arrived yet), the delta would lose that change: read
    // the table as it is now instead.
    if (!table || change.replaced || !madeFrom(table, change)) return this.reload(change.prefixTableId);
    this.changeEntries(change.prefixTableId, table, change.added, change.removed);
    table.version = change.tableVersion;
    table.contentHash = change.contentHash;
  }

  private async reload(id: string): Promise<void> {
    const held = this.heldTables.get(id);
    const table = await this.loadTable(id, held && { version: held.version });
    // What is held is that version's content, whether it was read or brought there by deltas.
    if (table === 'unchanged') {
      if (held) return;
      throw new Error(`the table loader answered 'unchanged' for table ${id}, which is not held`);
    }
    if (table) this.putTable(id, table, table.prefixes);
    else this.dropTable(id);
  }
}

/**
 * Whether a listed change was made from the table held. Its event and the table as read are
 * checked as they arrived, not as typed: a service older than this helper sends no content
 * hashes, and then only the version right before the change will do.
 */
function madeFrom(table: { version: number; contentHash?: string }, change: PrefixTableChange): boolean {
  const from: unknown = change.previousContentHash;
  if (typeof from !== 'string' || typeof table.contentHash !== 'string')
    return table.version === change.tableVersion - 1;
  return table.contentHash === from;
}

/** Reads NDJSON records from a byte stream (a fetch body), one line at a time. */
export async function* ndjsonRecords<T>(body: AsyncIterable<Uint8Array>): AsyncGenerator<T> {
  const decoder = new TextDecoder();
  let rest = '';
  for await (const chunk of body) {
    rest += decoder.decode(chunk, { stream: true });
    let at: number;
    while ((at = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, at);
      rest = rest.slice(at + 1);
      if (line) yield JSON.parse(line) as T;
    }
  }
  if (rest.trim()) yield JSON.parse(rest) as T;
}

/**
 * Follows `operator.config.>` from `streamSequence` with an ordered consumer (in order, no ack
 * needed; its own state is the version check) and applies each event in turn.
 */
export async function followConfigEvents(
  nc: NatsConnection,
  stream: string,
  streamSequence: number,
  state: RoutingState,
  /** Told of an event that could not be applied (a table reload failed, say); it is retried. */
  onError: (err: unknown, event: EventEnvelope) => void = (err) =>
    console.error('config event not applied; retrying', err),
): Promise<{ stop(): Promise<void> }> {
  const consumer = await nc.jetstream().consumers.get(stream, {
    // One subject, not a list: servers before 2.10 (Debian's 2.9) know filter_subject only.
    filterSubjects: 'operator.config.>',
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: streamSequence,
  });
  const messages = await consumer.consume();
  let stopping = false;
  const loop = (async () => {
    for await (const msg of messages) {
      const event = msg.json<EventEnvelope>();
      // In order or not at all: the next event waits until this one is applied.
      for (;;) {
        try {
          await state.apply(event);
          break;
        } catch (err) {
          if (stopping) return;
          onError(err, event);
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    }
  })();
  return {
    async stop() {
      stopping = true;
      messages.stop();
      await loop;
    },
  };
}
