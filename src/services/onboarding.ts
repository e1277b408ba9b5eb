import { randomUUID } from 'node:crypto';
import { findByEndpoint } from '../db/operators';
import type { OperatorMetadata, RoutingRuleInput, TpsLimit } from '../domain/operator';
import { workflowIds } from '../domain/workflow-ids';
import { EVENT_MAX_BYTES, EventTooLargeError, largestField } from '../events/envelope';
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

/** What the `created` event adds to the request: the operator's own fields, and each rule's. */
const CREATED_EVENT_OVERHEAD = { fixed: 2_000, perRule: 400 };

/**
 * Refuses, before anything is staged, an onboarding whose `operator.config.created` event
 * (the operator and its rules) would not fit a NATS message. An estimate from above: the
 * request without its password plus what the event adds. The outbox's own check stays the rule.
 */
function checkCreatedEventFits(input: NewOperator): void {
  const { password: _password, ...event } = input;
  const bytes =
    Buffer.byteLength(JSON.stringify(event)) +
    CREATED_EVENT_OVERHEAD.fixed +
    CREATED_EVENT_OVERHEAD.perRule * input.routingRules.length;
  if (bytes > EVENT_MAX_BYTES) throw new EventTooLargeError(bytes, largestField(event));
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
    checkCreatedEventFits(input);

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
