import { randomUUID } from 'node:crypto';
import { findByEndpoint } from '../db/operators';
import type { OperatorMetadata, RoutingRuleInput, TpsLimit } from '../domain/operator';
import { workflowIds } from '../domain/workflow-ids';
import type { onboardOperator } from '../workflows/onboarding';
import { stagePassword } from './credentials-staging';
import { checkPrefixTables } from './routing-rules';
import { duplicateOperator } from './shared/errors';
import { startWorkflow, type WorkflowServiceDeps, type WorkflowStarted } from './shared/workflow-start';

export interface NewOperator {
  metadata: OperatorMetadata;
  password: string;
  tpsLimit: TpsLimit;
  routingRules: RoutingRuleInput[];
}

/** POST /operators: checks what it can, stages the password in Vault, starts the onboarding workflow. */
export class OnboardingService {
  constructor(private readonly deps: WorkflowServiceDeps) {}

  /**
   * Answers once the workflow has saved the operator: a duplicate endpoint is a synchronous 409,
   * and the password never becomes workflow input.
   */
  async start(input: NewOperator, actor: string): Promise<WorkflowStarted> {
    const { db, kv, config, log } = this.deps;
    const holder = await findByEndpoint(db, input.metadata);
    if (holder) throw duplicateOperator(holder.id);
    await checkPrefixTables(db, input.routingRules, (i) => `routingRules[${i}]`);

    const id = randomUUID();
    const staged = await stagePassword(kv, log, 'onboarding', id, {
      system_id: input.metadata.systemId,
      password: input.password,
    });
    return startWorkflow<typeof onboardOperator>(this.deps, {
      what: 'onboarding',
      workflowType: 'onboardOperator',
      workflowId: workflowIds.onboarding(id),
      operatorId: id,
      args: [
        {
          draft: { id, metadata: input.metadata, tpsLimit: input.tpsLimit, routingRules: input.routingRules },
          stagedCredentialsVersion: staged.version,
          actor,
          bindTimeoutS: config.onboardingBindTimeoutS,
        },
      ],
      // An onboarding nobody saved would hold its endpoint: cancel it, its compensation cleans up.
      whenNoWorker: 'cancel',
      discard: staged.discard,
    });
  }
}
