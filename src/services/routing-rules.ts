import type { PoolClient } from 'pg';
import { inTransaction, type Db } from '../clients/postgres';
import { commitChange, findOperator } from '../db/operators';
import { findLivePrefixTableIds, lockPrefixTables } from '../db/prefix-tables';
import { insertRoutingRules, listRoutingRules, softDeleteRoutingRules, updateRoutingRule } from '../db/routing-rules';
import { replaceTpsLimit } from '../db/tps-limits';
import type { LintFinding } from '../domain/routing-lint';
import type { Logger } from '../platform/logger';
import { acceptsChanges, refusal } from '../domain/lifecycle';
import {
  missingPrefixTableErrors,
  tablesUsedBy,
  type Operator,
  type RoutingRule,
  type RoutingRuleInput,
  type TpsLimit,
} from '../domain/operator';
import { checkVersion, conflict, notFound, type ExpectedVersion, unprocessable } from './shared/errors';
import type { RoutingLintService } from './routing-lint';

/**
 * An operator's routing rules and TPS limit: every write is one transaction that checks the
 * operator's version (If-Match), changes the rows, bumps the version and commits
 * `operator.config.routing_updated` (the whole rule set after the change) or `tps_updated`.
 */

export interface RoutingRuleSet {
  operatorId: string;
  version: number;
  routingRules: RoutingRule[];
}

/** A write's answer: the set after it, and the lint findings that involve the rules it wrote (warnings, never refusals). */
export interface RoutingRuleWrite extends RoutingRuleSet {
  /** Null when the lint could not run after the write (which is committed). */
  findings: LintFinding[] | null;
}

export interface OperatorTpsLimit {
  operatorId: string;
  version: number;
  tpsLimit: TpsLimit | null;
}

/** A rule change: the fields given replace the rule's; `prefixes` and `prefixTableId` replace each other. */
export type RoutingRulePatch = Partial<RoutingRuleInput>;

/** Refuses rules naming a prefix table that does not exist (or is deleted), naming each field. */
export async function checkPrefixTables(
  db: Db | PoolClient,
  rules: readonly RoutingRuleInput[],
  field: (index: number) => string,
): Promise<void> {
  refuseMissingTables(rules, await findLivePrefixTableIds(db, tablesUsedBy(rules)), field);
}

/** The same against the live tables a write has locked. */
function refuseMissingTables(
  rules: readonly RoutingRuleInput[],
  live: ReadonlySet<string>,
  field: (index: number) => string,
): void {
  const errors = missingPrefixTableErrors(rules, live, field);
  if (errors.length > 0) throw unprocessable(errors);
}

export class RoutingRuleService {
  constructor(private readonly deps: { db: Db; lint: RoutingLintService; log: Logger }) {}

  async list(operatorId: string): Promise<RoutingRuleSet> {
    const op = await findOperator(this.deps.db, operatorId);
    if (!op) throw notFound(`Operator ${operatorId}`);
    return { operatorId, version: op.version, routingRules: await listRoutingRules(this.deps.db, operatorId) };
  }

  /** The whole set at once: a bad rule writes none. */
  async replace(
    operatorId: string,
    rules: RoutingRuleInput[],
    expected: ExpectedVersion,
    actor: string,
  ): Promise<RoutingRuleWrite> {
    const set = await this.change(operatorId, expected, actor, tablesUsedBy(rules), async (tx, live) => {
      refuseMissingTables(rules, live, (i) => `routingRules[${i}]`);
      await softDeleteRoutingRules(tx, operatorId, actor);
      await insertRoutingRules(tx, operatorId, rules, actor);
    });
    return this.withFindings(
      set,
      set.routingRules.map((r) => r.id),
    );
  }

  async add(
    operatorId: string,
    rule: RoutingRuleInput,
    expected: ExpectedVersion,
    actor: string,
  ): Promise<RoutingRuleWrite & { ruleId: string }> {
    let ruleId = '';
    const set = await this.change(operatorId, expected, actor, tablesUsedBy([rule]), async (tx, live) => {
      refuseMissingTables([rule], live, () => '');
      [ruleId = ''] = await insertRoutingRules(tx, operatorId, [rule], actor);
    });
    return { ...(await this.withFindings(set, [ruleId])), ruleId };
  }

  /** Merges the patch into the rule; `validate` checks the merged rule as a whole (the API's schema). */
  async update(
    operatorId: string,
    ruleId: string,
    merge: (current: RoutingRule) => RoutingRuleInput,
    expected: ExpectedVersion,
    actor: string,
    /** The table the patch names, if any: locked before the operator (see lockPrefixTables). */
    newTableId?: string,
  ): Promise<RoutingRuleWrite> {
    const set = await this.change(operatorId, expected, actor, newTableId ? [newTableId] : [], async (tx, locked) => {
      const current = (await listRoutingRules(tx, operatorId)).find((r) => r.id === ruleId);
      if (!current) throw notFound(`Routing rule ${ruleId} of operator ${operatorId}`);
      const next = merge(current);
      // The rule's own table, if the patch keeps it, is live: a table used by a live rule is not deleted.
      refuseMissingTables(
        [next],
        current.prefixTableId ? new Set([...locked, current.prefixTableId]) : locked,
        () => '',
      );
      await updateRoutingRule(tx, operatorId, ruleId, next, actor);
    });
    return this.withFindings(set, [ruleId]);
  }

  /** The findings concern the rules left (an operator left with no enabled rule, say). */
  async remove(
    operatorId: string,
    ruleId: string,
    expected: ExpectedVersion,
    actor: string,
  ): Promise<RoutingRuleWrite> {
    const set = await this.change(operatorId, expected, actor, [], async (tx) => {
      if ((await softDeleteRoutingRules(tx, operatorId, actor, ruleId)) === 0) {
        throw notFound(`Routing rule ${ruleId} of operator ${operatorId}`);
      }
    });
    return this.withFindings(
      set,
      set.routingRules.map((r) => r.id),
    );
  }

  /**
   * The committed set with the findings about the rules written. The lint runs after the commit
   * (it reads what peers will route by), on a connection of its own, with the operator in scope
   * too: a set left empty has no rule to carry its `operator_without_enabled_rule`. When it
   * fails, the write still answers as made, with `findings: null`; a 503 would invite a retry of
   * a change already made (a 412, or a POST repeated).
   */
  private async withFindings(set: RoutingRuleSet, ruleIds: string[]): Promise<RoutingRuleWrite> {
    try {
      return { ...set, findings: await this.deps.lint.lint({ ruleIds, operatorIds: [set.operatorId] }) };
    } catch (err) {
      this.deps.log.warn(
        { err: (err as Error).message, operatorId: set.operatorId, version: set.version },
        'routing lint after a committed rule write failed; answered without findings',
      );
      return { ...set, findings: null };
    }
  }

  async getTpsLimit(operatorId: string): Promise<OperatorTpsLimit> {
    const op = await findOperator(this.deps.db, operatorId);
    if (!op) throw notFound(`Operator ${operatorId}`);
    return { operatorId, version: op.version, tpsLimit: op.tpsLimit };
  }

  async replaceTpsLimit(operatorId: string, limit: TpsLimit, expected: ExpectedVersion, actor: string) {
    return inTransaction(this.deps.db, async (tx) => {
      const op = await this.lockForChange(tx, operatorId, expected);
      await replaceTpsLimit(tx, operatorId, limit, actor);
      const next = await commitChange(tx, op, 'tps_updated', {}, actor, () => ({ tpsLimit: limit }));
      return { operatorId, version: next.version, tpsLimit: next.tpsLimit } satisfies OperatorTpsLimit;
    });
  }

  private async change(
    operatorId: string,
    expected: ExpectedVersion,
    actor: string,
    tableIds: readonly string[],
    /** Given the live tables among `tableIds`, locked. */
    write: (tx: PoolClient, liveTables: ReadonlySet<string>) => Promise<void>,
  ): Promise<RoutingRuleSet> {
    return inTransaction(this.deps.db, async (tx) => {
      const liveTables = await lockPrefixTables(tx, tableIds, 'use');
      const op = await this.lockForChange(tx, operatorId, expected);
      await write(tx, liveTables);
      const routingRules = await listRoutingRules(tx, operatorId);
      const next = await commitChange(tx, op, 'routing_updated', {}, actor, () => ({ routingRules }));
      return { operatorId, version: next.version, routingRules };
    });
  }

  /** The live operator, locked, at the version If-Match names, and able to change now. */
  private async lockForChange(tx: PoolClient, operatorId: string, expected: ExpectedVersion): Promise<Operator> {
    const op = await findOperator(tx, operatorId, true);
    if (!op) throw notFound(`Operator ${operatorId}`);
    checkVersion(expected, op.version);
    // Before `created` is out (version 0) a change would overtake it on the stream.
    if (op.version === 0) throw conflict(`Operator ${operatorId} is still being created; retry shortly.`);
    if (!acceptsChanges(op.status)) throw conflict(refusal(operatorId, op.status, 'its routing can no longer change'));
    return op;
  }
}
