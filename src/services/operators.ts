import type { Client } from '@temporalio/client';
import { inTransaction, isUniqueViolation, type Db } from '../clients/postgres';
import { withinDeadline } from '../clients/temporal';
import {
  changeOperator,
  findByEndpoint,
  findOperator,
  listOperators,
  type BeforeChange,
  type ListQuery,
} from '../db/operators';
import { listRoutingRules } from '../db/routing-rules';
import { acceptsChanges, refusal } from '../domain/lifecycle';
import type { Operator, OperatorMetadata, RoutingRule } from '../domain/operator';
import type { Config } from '../platform/config';
import { checkVersion, conflict, duplicateOperator, notFound, type ExpectedVersion } from './shared/errors';
import { workflowUrl } from './shared/workflow-start';

export type MetadataPatch = Partial<Omit<OperatorMetadata, 'systemId'>>;

export interface WorkflowRun {
  workflowId: string;
  runId: string;
  type: string;
  status: string;
  startTime: string;
  closeTime: string | null;
  url: string;
}

export interface OperatorServiceDeps {
  db: Db;
  temporal: Client;
  config: Config['temporal'];
}

/** Operators as they are: read, list, change metadata, their config and their workflow runs. */
export class OperatorService {
  constructor(private readonly deps: OperatorServiceDeps) {}

  async get(id: string): Promise<Operator> {
    const op = await findOperator(this.deps.db, id);
    if (!op) throw notFound(`Operator ${id}`);
    return op;
  }

  async list(query: ListQuery): Promise<Operator[]> {
    return listOperators(this.deps.db, query);
  }

  /** Metadata only; `expectedVersion` comes from If-Match. Publishes `operator.config.updated`. */
  async updateMetadata(
    id: string,
    patch: MetadataPatch,
    expectedVersion: ExpectedVersion | undefined,
    actor: string,
  ): Promise<Operator> {
    const mayChange = (before: BeforeChange) => {
      if (expectedVersion !== undefined) checkVersion(expectedVersion, before.version);
      // Before `created` is out (version 0) an `updated` would overtake it on the stream.
      if (before.version === 0) throw conflict(`Operator ${id} is still being created; retry shortly.`);
      if (!acceptsChanges(before.status)) throw conflict(refusal(id, before.status, 'it can no longer change'));
    };
    try {
      // A snapshot: the update may wait for the row's lock, and the row it returns (TPS limit
      // included) must be read as of after that wait; a concurrent change retries it.
      return await inTransaction(
        this.deps.db,
        async (tx) => {
          const next = await changeOperator(tx, id, 'updated', patch, actor, mayChange, (changed) => ({
            operator: changed,
            changed: Object.keys(patch),
          }));
          if (!next) throw notFound(`Operator ${id}`);
          return next;
        },
        { snapshot: true },
      );
    } catch (err) {
      if (!isUniqueViolation(err, 'operators_endpoint_live_key')) throw err;
      // The update failed before the checks could judge the row: they come first (a stale
      // If-Match is a 412 whatever else the request would clash with).
      const current = await this.get(id);
      mayChange(current);
      const holder = await findByEndpoint(this.deps.db, { ...current, ...patch });
      throw duplicateOperator(holder?.id ?? null);
    }
  }

  /** Every run of this operator's workflows, newest first, with its Temporal UI address. */
  async listWorkflows(id: string): Promise<WorkflowRun[]> {
    await this.get(id);
    const { temporal, config } = this.deps;
    return withinDeadline(temporal, config.callTimeoutMs, async () => {
      const runs: WorkflowRun[] = [];
      for await (const wf of temporal.workflow.list({ query: `OperatorId = '${id}'` })) {
        runs.push({
          workflowId: wf.workflowId,
          runId: wf.runId,
          type: wf.type,
          status: wf.status.name,
          startTime: wf.startTime.toISOString(),
          closeTime: wf.closeTime?.toISOString() ?? null,
          url: workflowUrl(config, temporal, wf.workflowId, wf.runId),
        });
      }
      return runs;
    });
  }

  /** The operator's full config as the connectors read it, with its version. */
  async getConfig(id: string): Promise<{ operator: Operator; routingRules: RoutingRule[]; version: number }> {
    const operator = await this.get(id);
    return { operator, routingRules: await listRoutingRules(this.deps.db, id), version: operator.version };
  }
}
