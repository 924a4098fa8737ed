import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
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

export interface BinlogArchiveMachineProps {
  readonly parts: MachineParts;
  /** Shards archived at once. */
  readonly maxParallelShards: number;
}

/**
 * BinlogArchive (scheduled, every few minutes): validate input → resolve targets (each shard's
 * backup host) → per shard the agent's `binlogArchive` → summary. A failing shard does not stop
 * the others; the execution then fails naming it (its files are archived by the next run).
 */
export class BinlogArchiveStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: BinlogArchiveMachineProps) {
    super(scope, id);
    const { parts } = props;
    const fns = parts.functions;
    const failure = notifyAndFail(this, 'binlog archive', parts);

    const validate = validateInput(this, parts, 'binlogArchive');
    const resolve = invoke(
      this,
      'ResolveTargets',
      fns['resolve-targets'],
      { machine: 'binlogArchive', binlogArchive: sfn.JsonPath.entirePayload },
      '$.resolved',
    );
    const archive = agentTask(this, 'AgentBinlogArchive', parts, {
      hostPath: '$.target.host',
      request: '$.target.request',
      resultPath: '$.archived',
    });
    const shardDone = new sfn.Pass(this, 'ShardArchived', {
      parameters: {
        keyspace: sfn.JsonPath.stringAt('$.target.keyspace'),
        shard: sfn.JsonPath.stringAt('$.target.shard'),
        host: sfn.JsonPath.stringAt('$.target.host'),
        ok: true,
        bytes: sfn.JsonPath.objectAt('$.archived.bytes'),
        seconds: sfn.JsonPath.numberAt('$.archived.seconds'),
      },
    });
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
    archive.addCatch(shardFailed, { resultPath: ERROR_PATH });
    const shards = new sfn.Map(this, 'ArchiveShards', {
      itemsPath: '$.resolved.targets',
      maxConcurrency: props.maxParallelShards,
      itemSelector: { target: sfn.JsonPath.objectAt('$$.Map.Item.Value') },
      resultPath: '$.shards',
    });
    shards.itemProcessor(archive.next(shardDone));
    const summarize = invoke(
      this,
      'SummarizeShards',
      fns['summarize-shards'],
      { shards: sfn.JsonPath.listAt('$.shards'), unresolved: sfn.JsonPath.listAt('$.resolved.unresolved') },
      '$.summary',
    );
    const allOk = endWithSummary(
      this,
      { succeeded: 'Archived', failed: 'ShardsFailed', choice: 'AllShardsArchived' },
      failure,
    );
    for (const step of [validate, resolve, shards, summarize])
      step.addCatch(failure, { resultPath: ERROR_PATH });
    this.stateMachine = standardMachine(this, 'StateMachine', {
      definition: validate.next(resolve).next(shards).next(summarize).next(allOk),
      logKey: parts.logKey,
      comment: "stepback BinlogArchive: archive every target shard's closed binary logs",
    });
  }
}
