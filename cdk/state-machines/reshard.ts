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

export interface ReshardMachineProps {
  readonly parts: MachineParts;
  /** Destinations restored at once. */
  readonly maxParallelDestinations: number;
}

/**
 * Reshard (console): snapshot the source by key range or tables → validate each manifest → per
 * destination { agent multirestore → agent diff in key-range mode } → rebuild the serving vschema
 * (when the deployment has a topology store) → report.
 */
export class ReshardStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: ReshardMachineProps) {
    super(scope, id);
    const { parts } = props;
    const fns = parts.functions;
    const failure = notifyAndFail(this, 'reshard', parts);

    const validate = invoke(
      this,
      'ValidateInput',
      fns['validate-input'],
      { machine: 'reshard', input: sfn.JsonPath.entirePayload },
      undefined,
    );
    const snapshot = agentTask(this, 'AgentSnapshot', parts, {
      hostPath: '$.sourceHost',
      request: '$.snapshotRequest',
      resultPath: '$.snapshot',
    });
    const validateSnapshots = invoke(
      this,
      'ValidateSnapshots',
      fns['validate-manifest'],
      { snapshots: sfn.JsonPath.listAt('$.snapshot.snapshots') },
      '$.validation',
    );
    const resolve = invoke(
      this,
      'ResolveDestinations',
      fns['resolve-targets'],
      { machine: 'reshard', reshard: sfn.JsonPath.entirePayload },
      '$.resolved',
    );
    const multirestore = agentTask(this, 'AgentMultirestore', parts, {
      hostPath: '$.host',
      request: '$.multirestore',
      resultPath: '$.restored',
    });
    const diff = agentTask(this, 'AgentDiff', parts, {
      hostPath: '$.host',
      request: '$.diff',
      resultPath: '$.diffResult',
    });
    const destinationDone = new sfn.Pass(this, 'DestinationDone', {
      parameters: {
        host: sfn.JsonPath.stringAt('$.host'),
        keyRange: sfn.JsonPath.stringAt('$.keyRange'),
        restored: sfn.JsonPath.objectAt('$.restored'),
        diff: sfn.JsonPath.objectAt('$.diffResult'),
      },
    });
    const destinations = new sfn.Map(this, 'RestoreDestinations', {
      itemsPath: '$.resolved.destinations',
      maxConcurrency: props.maxParallelDestinations,
      resultPath: '$.destinations',
    });
    destinations.itemProcessor(multirestore.next(diff).next(destinationDone));
    const report = new sfn.Pass(this, 'Resharded', {
      parameters: {
        keyspace: sfn.JsonPath.stringAt('$.keyspace'),
        shard: sfn.JsonPath.stringAt('$.shard'),
        snapshots: sfn.JsonPath.listAt('$.snapshot.snapshots'),
        destinations: sfn.JsonPath.listAt('$.destinations'),
        vschema: sfn.JsonPath.objectAt('$.vschemaResult'),
      },
    });
    const rebuild = invoke(
      this,
      'RebuildVSchema',
      fns['rebuild-vschema'],
      { cells: sfn.JsonPath.listAt('$.vschema.cells') },
      '$.vschemaResult',
    );
    const noTopology = new sfn.Pass(this, 'NoTopologyStore', {
      result: sfn.Result.fromObject({ skipped: 'this deployment has no topology store' }),
      resultPath: '$.vschemaResult',
    });
    const servingVSchema = new sfn.Choice(this, 'HasTopologyStore')
      .when(sfn.Condition.isNull('$.vschema'), noTopology.next(report))
      .otherwise(rebuild.next(report));
    for (const step of [validate, snapshot, validateSnapshots, resolve, destinations, rebuild]) {
      step.addCatch(failure, { resultPath: ERROR_PATH });
    }
    this.stateMachine = standardMachine(this, 'StateMachine', {
      definition: validate
        .next(snapshot)
        .next(validateSnapshots)
        .next(resolve)
        .next(destinations)
        .next(servingVSchema),
      logKey: parts.logKey,
      comment: 'stepback Reshard: snapshot a shard by key range or tables, restore and diff each destination',
    });
  }
}
