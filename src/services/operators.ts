import { randomUUID } from 'node:crypto';
import {
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { inTransaction, isUniqueViolation, type Db } from '../clients/postgres';
import type { KvStore } from '../clients/vault';
import type { Config } from '../config';
import {
  commitChange,
  findByEndpoint,
  findOperator,
  listOperators,
  listRoutingRules,
  type ListQuery,
} from '../db/operators';
import { findLivePrefixTableIds } from '../db/prefix-tables';
import { stagedCredentialsPath } from '../domain/credentials';
import { DUPLICATE_OPERATOR } from '../domain/failures';
import type {
  Operator,
  OperatorMetadata,
  OperatorStatus,
  RoutingRule,
  RoutingRuleInput,
  TpsLimit,
} from '../domain/operator';
import { OPERATOR_ID, workflowIds } from '../domain/workflow-ids';
import type { Logger } from '../logger';
import { operatorSavedUpdate } from '../workflows/messages';
import type { onboardOperator } from '../workflows/onboarding';
import { conflict, notFound, staleVersion, unavailable, validationFailed, type FieldError } from './errors';
import { startRotation, type RotationStarted } from './rotation';
import { workflowExists } from '../clients/temporal';

export interface NewOperator {
  metadata: OperatorMetadata;
  password: string;
  tpsLimit: TpsLimit;
  routingRules: RoutingRuleInput[];
}

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
  kv: KvStore;
  temporal: Client;
  config: Config['temporal'];
  log: Logger;
}

const PATCH_COLUMNS: Record<keyof MetadataPatch, string> = {
  name: 'name',
  host: 'host',
  port: 'port',
  systemType: 'system_type',
  bindType: 'bind_type',
  tls: 'tls',
  windowSize: 'window_size',
  enquireLinkIntervalS: 'enquire_link_interval_s',
  labels: 'labels',
};

const EDITABLE: readonly OperatorStatus[] = ['ONBOARDING', 'ACTIVE', 'DRAINING'];

export class OperatorService {
  constructor(private readonly deps: OperatorServiceDeps) {}

  /**
   * Stages the password in Vault, then starts onboarding and waits only until the workflow has
   * saved the operator (update-with-start): a duplicate endpoint is a synchronous 409, and the
   * password never becomes workflow input.
   */
  async startOnboarding(
    input: NewOperator,
    actor: string,
  ): Promise<{ operator: Operator; workflowId: string; workflowUrl: string }> {
    const { db, kv, temporal, config, log } = this.deps;
    const holder = await findByEndpoint(db, input.metadata);
    if (holder) throw duplicate(holder.id);
    await this.checkPrefixTables(input.routingRules);

    const id = randomUUID();
    const workflowId = workflowIds.onboarding(id);
    const staged = stagedCredentialsPath(id);
    const stagedVersion = await kv.write(staged, { system_id: input.metadata.systemId, password: input.password });

    const start = new WithStartWorkflowOperation<typeof onboardOperator>('onboardOperator', {
      workflowId,
      taskQueue: config.taskQueue,
      workflowIdConflictPolicy: 'FAIL',
      typedSearchAttributes: [{ key: OPERATOR_ID, value: id }],
      args: [
        {
          draft: { id, metadata: input.metadata, tpsLimit: input.tpsLimit, routingRules: input.routingRules },
          stagedCredentialsVersion: stagedVersion,
          actor,
          bindTimeoutS: config.onboardingBindTimeoutS,
        },
      ],
    });
    try {
      // Bounded: with no worker polling, the update would otherwise hold the request open.
      const operator = await temporal.withDeadline(Date.now() + config.onboardingAcceptTimeoutMs, () =>
        temporal.workflow.executeUpdateWithStart(operatorSavedUpdate, { startWorkflowOperation: start }),
      );
      return { operator, workflowId, workflowUrl: this.workflowUrl(workflowId) };
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
        // The workflow cleans up its own staged secret when it rejects.
        if (err.cause.type === DUPLICATE_OPERATOR) {
          const details = err.cause.details?.[0] as { existingOperatorId?: string } | undefined;
          throw duplicate(details?.existingOperatorId ?? null);
        }
        throw unavailable(`onboarding could not save the operator: ${err.cause.message}`);
      }
      if (err instanceof WorkflowExecutionAlreadyStartedError)
        throw conflict(`workflow ${workflowId} is already running`);
      // A timed-out update-with-start does not say whether the start happened: ask the server.
      const started = await workflowExists(temporal, workflowId).catch(() => undefined);
      if (started === undefined) {
        // Temporal does not answer: whether the workflow exists is unknown, so the staged secret
        // stays for the workflow or the staging sweep to remove.
        throw unavailable('Temporal did not confirm the onboarding; retry later.', { operatorId: id, workflowId });
      }
      if (started) {
        // Started but not saved in time: cancel it; its compensation discards the staged secret
        // whenever a worker picks it up, so the 503 leaves nothing behind.
        await temporal.workflow.getHandle(workflowId).cancel();
        log.warn({ operatorId: id, workflowId }, 'onboarding not saved in time; cancelled');
        throw unavailable(
          `No worker saved the operator within ${config.onboardingAcceptTimeoutMs} ms; the onboarding was cancelled. Retry later.`,
          { operatorId: id, workflowId },
        );
      }
      // The workflow never started: nothing else will remove the staged secret.
      await kv
        .destroy(staged)
        .catch((e: unknown) => log.error({ err: (e as Error).message, operatorId: id }, 'staged secret left behind'));
      throw err;
    }
  }

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
    expectedVersion: number | undefined,
    actor: string,
  ): Promise<Operator> {
    const columns: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(patch)) {
      if (value !== undefined) columns[PATCH_COLUMNS[key as keyof MetadataPatch]] = value;
    }
    let updated: Operator;
    try {
      updated = await inTransaction(this.deps.db, async (tx) => {
        const current = await findOperator(tx, id, true);
        if (!current) throw notFound(`Operator ${id}`);
        if (expectedVersion !== undefined && expectedVersion !== current.version) throw staleVersion(current.version);
        // Before `created` is out (version 0) an `updated` would overtake it on the stream.
        if (current.version === 0) throw conflict(`Operator ${id} is still being created; retry shortly.`);
        if (!EDITABLE.includes(current.status))
          throw conflict(`Operator ${id} is ${current.status} and can no longer change.`);
        return commitChange(tx, current, 'updated', columns, actor, (next) => ({
          operator: next,
          changed: Object.keys(patch),
        }));
      });
    } catch (err) {
      if (isUniqueViolation(err, 'operators_endpoint_live_key')) {
        const holder = await findByEndpoint(this.deps.db, { ...(await this.get(id)), ...patch });
        throw duplicate(holder?.id ?? null);
      }
      throw err;
    }
    return updated;
  }

  /** Starts a credential rotation (src/services/rotation.ts); the password goes only to Vault. */
  async rotateCredentials(
    id: string,
    password: string,
    actor: string,
  ): Promise<RotationStarted & { workflowUrl: string }> {
    const started = await startRotation(this.deps, id, password, actor);
    return { ...started, workflowUrl: this.workflowUrl(started.workflowId, started.runId) };
  }

  /** Every run of this operator's workflows, newest first, with its Temporal UI address. */
  async listWorkflows(id: string): Promise<WorkflowRun[]> {
    await this.get(id);
    const { temporal } = this.deps;
    const runs: WorkflowRun[] = [];
    for await (const wf of temporal.workflow.list({ query: `OperatorId = '${id}'` })) {
      runs.push({
        workflowId: wf.workflowId,
        runId: wf.runId,
        type: wf.type,
        status: wf.status.name,
        startTime: wf.startTime.toISOString(),
        closeTime: wf.closeTime?.toISOString() ?? null,
        url: this.workflowUrl(wf.workflowId, wf.runId),
      });
    }
    return runs;
  }

  private async checkPrefixTables(rules: RoutingRuleInput[]): Promise<void> {
    const ids = [...new Set(rules.flatMap((r) => (r.prefixTableId ? [r.prefixTableId] : [])))];
    const known = await findLivePrefixTableIds(this.deps.db, ids);
    const errors: FieldError[] = [];
    rules.forEach((r, i) => {
      if (r.prefixTableId && !known.has(r.prefixTableId)) {
        errors.push({ field: `routingRules[${i}].prefixTableId`, message: 'no such prefix table' });
      }
    });
    if (errors.length > 0) throw validationFailed(errors);
  }

  /** The operator's full config as the connectors read it, with its version. */
  async getConfig(id: string): Promise<{ operator: Operator; routingRules: RoutingRule[]; version: number }> {
    const operator = await this.get(id);
    return { operator, routingRules: await listRoutingRules(this.deps.db, id), version: operator.version };
  }

  /** A workflow's page in the Temporal UI (a run's history when the run is known). */
  workflowUrl(workflowId: string, runId?: string): string {
    const { config, temporal } = this.deps;
    const base = `${config.uiUrl}/namespaces/${encodeURIComponent(temporal.options.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
    return runId ? `${base}/${runId}/history` : base;
  }
}

function duplicate(existingOperatorId: string | null) {
  return conflict(
    `An operator with this host, port and systemId already exists${existingOperatorId ? `: ${existingOperatorId}` : ''}.`,
    { existingOperatorId },
  );
}
