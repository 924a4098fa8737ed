import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import {
  agentTask,
  ERROR_PATH,
  endWithSummary,
  invoke,
  type MachineParts,
  notifyAndFail,
  standardMachine,
  validateInput,
} from './common.ts';

export interface BackupMachineProps {
  readonly parts: MachineParts;
  /** Shards backed up at once. */
  readonly maxParallelShards: number;
}

/**
 * The per-shard work as a Map over `itemsPath`: { agent backup → validate manifest → prune } →
 * the shard's result. A failing shard gives a failed result and does not stop the others; a failed
 * prune is a warning of a shard whose backup stands.
 */
function shardsMap(
  scope: Construct,
  parts: MachineParts,
  itemsPath: string,
  maxParallelShards: number,
): sfn.Map {
  const fns = parts.functions;
  const agentBackup = agentTask(scope, 'AgentBackup', parts, {
    hostPath: '$.target.host',
    request: '$.target.request',
    resultPath: '$.backup',
  });
  const validateManifest = invoke(
    scope,
    'ValidateManifest',
    fns['validate-manifest'],
    { dir: sfn.JsonPath.stringAt('$.target.dir'), name: sfn.JsonPath.stringAt('$.backup.name') },
    '$.validation',
  );
  const prune = invoke(
    scope,
    'PruneBackups',
    fns['prune-backups'],
    { dir: sfn.JsonPath.stringAt('$.target.dir'), retention: sfn.JsonPath.objectAt('$.retention') },
    '$.prune',
  );
  const shardDone = new sfn.Pass(scope, 'ShardDone', {
    parameters: {
      keyspace: sfn.JsonPath.stringAt('$.target.keyspace'),
      shard: sfn.JsonPath.stringAt('$.target.shard'),
      host: sfn.JsonPath.stringAt('$.target.host'),
      ok: true,
      backup: sfn.JsonPath.stringAt('$.backup.name'),
      position: sfn.JsonPath.stringAt('$.backup.position'),
      bytes: sfn.JsonPath.objectAt('$.backup.bytes'),
      seconds: sfn.JsonPath.numberAt('$.backup.seconds'),
      removed: sfn.JsonPath.listAt('$.prune.removed'),
      warning: sfn.JsonPath.stringAt('$.prune.warning'),
    },
  });
  // The backup is good whatever retention does: a failed prune is a warning of the shard.
  const pruneFailed = new sfn.Pass(scope, 'PruneFailed', {
    parameters: {
      removed: [],
      warning: sfn.JsonPath.format(
        'pruning failed, old backups are kept: {}: {}',
        sfn.JsonPath.stringAt('$.pruneError.Error'),
        sfn.JsonPath.stringAt('$.pruneError.Cause'),
      ),
    },
    resultPath: '$.prune',
  });
  prune.addCatch(pruneFailed, { resultPath: '$.pruneError' });
  pruneFailed.next(shardDone);
  const shardFailed = new sfn.Pass(scope, 'ShardFailed', {
    parameters: {
      keyspace: sfn.JsonPath.stringAt('$.target.keyspace'),
      shard: sfn.JsonPath.stringAt('$.target.shard'),
      host: sfn.JsonPath.stringAt('$.target.host'),
      ok: false,
      error: sfn.JsonPath.stringAt(`${ERROR_PATH}.Error`),
      cause: sfn.JsonPath.stringAt(`${ERROR_PATH}.Cause`),
    },
  });
  for (const step of [agentBackup, validateManifest]) {
    step.addCatch(shardFailed, { resultPath: ERROR_PATH });
  }
  const shards = new sfn.Map(scope, 'BackupShards', {
    itemsPath,
    maxConcurrency: maxParallelShards,
    itemSelector: {
      target: sfn.JsonPath.objectAt('$$.Map.Item.Value'),
      retention: sfn.JsonPath.objectAt('$.retention'),
    },
    resultPath: '$.shards',
  });
  shards.itemProcessor(agentBackup.next(validateManifest).next(prune).next(shardDone));
  return shards;
}

/**
 * One batch of a large Backup, run as a child execution so that each batch's shards have a
 * history of their own (an execution keeps at most 25,000 events, about 19 per shard): the shards
 * of the batch, then their summary.
 */
export class BackupBatchStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: BackupMachineProps) {
    super(scope, id);
    const { parts } = props;
    const shards = shardsMap(this, parts, '$.targets', props.maxParallelShards);
    const summarize = invoke(
      this,
      'SummarizeBatch',
      parts.functions['summarize-shards'],
      { shards: sfn.JsonPath.listAt('$.shards') },
      undefined,
    );
    this.stateMachine = standardMachine(this, 'StateMachine', {
      definition: shards.next(summarize),
      logKey: parts.logKey,
      comment: 'stepback Backup batch: back up one batch of shards for a Backup execution',
    });
  }
}

export interface BackupMachineWithBatchesProps extends BackupMachineProps {
  /** The machine each batch runs in when the targets are more than one batch. */
  readonly batch: sfn.IStateMachine;
}

/**
 * Backup (scheduled): validate input → resolve targets (explicit, or each shard's healthy replica
 * from the topology store) → per shard { agent backup → validate manifest → prune } → summary. A
 * failing shard, or one without a healthy replica, does not stop the others; the execution then
 * fails naming every failed shard. More targets than one batch (cdk.json
 * `backup.shardsPerExecution`) run batch after batch, each as a child execution.
 */
export class BackupStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: BackupMachineWithBatchesProps) {
    super(scope, id);
    const { parts } = props;
    const fns = parts.functions;
    const failure = notifyAndFail(this, 'backup', parts);

    const validate = validateInput(this, parts, 'backup');
    const resolve = invoke(
      this,
      'ResolveTargets',
      fns['resolve-targets'],
      { machine: 'backup', backup: sfn.JsonPath.entirePayload },
      '$.resolved',
    );

    const shards = shardsMap(this, parts, '$.resolved.targets', props.maxParallelShards);
    const startBatch = new tasks.StepFunctionsStartExecution(this, 'BackupBatch', {
      stateMachine: props.batch,
      integrationPattern: sfn.IntegrationPattern.RUN_JOB,
      associateWithParent: true,
      input: sfn.TaskInput.fromObject({
        targets: sfn.JsonPath.listAt('$.targets'),
        retention: sfn.JsonPath.objectAt('$.retention'),
      }),
      // The batch's summary; its shards' details stay in the child execution.
      resultSelector: { summary: sfn.JsonPath.objectAt('$.Output') },
      outputPath: '$.summary',
    });
    // Batch after batch: each runs its shards maxParallelShards at a time.
    const batches = new sfn.Map(this, 'BackupBatches', {
      itemsPath: '$.resolved.batches',
      maxConcurrency: 1,
      itemSelector: {
        targets: sfn.JsonPath.listAt('$$.Map.Item.Value'),
        retention: sfn.JsonPath.objectAt('$.retention'),
      },
      resultPath: '$.batches',
    });
    batches.itemProcessor(startBatch);
    const summarizeBatches = invoke(
      this,
      'SummarizeBatches',
      fns['summarize-shards'],
      { batches: sfn.JsonPath.listAt('$.batches'), unresolved: sfn.JsonPath.listAt('$.resolved.unresolved') },
      '$.summary',
    );

    const summarize = invoke(
      this,
      'SummarizeShards',
      fns['summarize-shards'],
      { shards: sfn.JsonPath.listAt('$.shards'), unresolved: sfn.JsonPath.listAt('$.resolved.unresolved') },
      '$.summary',
    );
    const allOk = endWithSummary(
      this,
      { succeeded: 'BackedUp', failed: 'ShardsFailed', choice: 'AllShardsBackedUp' },
      failure,
    );
    const inBatches = new sfn.Choice(this, 'InBatches')
      .when(
        sfn.Condition.booleanEquals('$.resolved.batched', true),
        batches.next(summarizeBatches).next(allOk),
      )
      .otherwise(shards.next(summarize).next(allOk));

    for (const step of [validate, resolve, shards, summarize, batches, summarizeBatches])
      step.addCatch(failure, { resultPath: ERROR_PATH });
    const definition = validate.next(resolve).next(inBatches);
    this.stateMachine = standardMachine(this, 'StateMachine', {
      definition,
      logKey: parts.logKey,
      comment: 'stepback Backup: back up every target shard on a replica, validate, prune',
    });
  }
}
