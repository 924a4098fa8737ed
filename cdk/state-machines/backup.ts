import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import {
  agentTask,
  ERROR_PATH,
  invoke,
  type MachineParts,
  notifyAndFail,
  standardMachine,
} from './common.ts';

export interface BackupMachineProps {
  readonly parts: MachineParts;
  /** Shards backed up at once. */
  readonly maxParallelShards: number;
}

/**
 * Backup (scheduled): validate input → resolve targets (explicit, or each shard's healthy replica
 * from the topology store) → per shard { agent backup → validate manifest → prune } → summary. A
 * failing shard, or one without a healthy replica, does not stop the others; the execution then
 * fails naming every failed shard.
 */
export class BackupStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: BackupMachineProps) {
    super(scope, id);
    const { parts } = props;
    const fns = parts.functions;
    const failure = notifyAndFail(this, 'backup', parts);

    const validate = invoke(
      this,
      'ValidateInput',
      fns['validate-input'],
      { machine: 'backup', input: sfn.JsonPath.entirePayload },
      undefined,
    );
    const resolve = invoke(
      this,
      'ResolveTargets',
      fns['resolve-targets'],
      { machine: 'backup', backup: sfn.JsonPath.entirePayload },
      '$.resolved',
    );

    const agentBackup = agentTask(this, 'AgentBackup', parts, {
      hostPath: '$.target.host',
      request: '$.target.request',
      resultPath: '$.backup',
    });
    const validateManifest = invoke(
      this,
      'ValidateManifest',
      fns['validate-manifest'],
      { dir: sfn.JsonPath.stringAt('$.target.dir'), name: sfn.JsonPath.stringAt('$.backup.name') },
      '$.validation',
    );
    const prune = invoke(
      this,
      'PruneBackups',
      fns['prune-backups'],
      { dir: sfn.JsonPath.stringAt('$.target.dir'), retention: sfn.JsonPath.objectAt('$.retention') },
      '$.prune',
    );
    const shardDone = new sfn.Pass(this, 'ShardDone', {
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
    const pruneFailed = new sfn.Pass(this, 'PruneFailed', {
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
    const shardFailed = new sfn.Pass(this, 'ShardFailed', {
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
    const shards = new sfn.Map(this, 'BackupShards', {
      itemsPath: '$.resolved.targets',
      maxConcurrency: props.maxParallelShards,
      itemSelector: {
        target: sfn.JsonPath.objectAt('$$.Map.Item.Value'),
        retention: sfn.JsonPath.objectAt('$.retention'),
      },
      resultPath: '$.shards',
    });
    shards.itemProcessor(agentBackup.next(validateManifest).next(prune).next(shardDone));

    const summarize = invoke(
      this,
      'SummarizeShards',
      fns['summarize-shards'],
      { shards: sfn.JsonPath.listAt('$.shards'), unresolved: sfn.JsonPath.listAt('$.resolved.unresolved') },
      '$.summary',
    );
    const succeeded = new sfn.Succeed(this, 'BackedUp', { outputPath: '$.summary' });
    const shardsFailed = new sfn.Pass(this, 'ShardsFailed', {
      parameters: {
        Error: sfn.JsonPath.stringAt('$.summary.error'),
        Cause: sfn.JsonPath.stringAt('$.summary.cause'),
      },
      resultPath: ERROR_PATH,
    });
    const allOk = new sfn.Choice(this, 'AllShardsBackedUp')
      .when(sfn.Condition.booleanEquals('$.summary.ok', true), succeeded)
      .otherwise(shardsFailed.next(failure));

    for (const step of [validate, resolve, shards, summarize])
      step.addCatch(failure, { resultPath: ERROR_PATH });
    const definition = validate.next(resolve).next(shards).next(summarize).next(allOk);
    this.stateMachine = standardMachine(this, 'StateMachine', {
      definition,
      logKey: parts.logKey,
      comment: 'stepback Backup: back up every target shard on a replica, validate, prune',
    });
  }
}
