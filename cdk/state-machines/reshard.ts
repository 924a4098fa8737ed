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
 * Reshard (console): snapshot the source replica by key range or tables → validate each manifest →
 * per destination { agent multirestore → agent catch-up to a small lag } → stop the source replica's
 * replication (the consistent point) → per destination { catch up to exactly that position → diff in
 * key-range mode } → start the source replica again (also when a step there failed) → rebuild the
 * serving vschema (when the deployment has a topology store) → report.
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
    const catchUp = agentTask(this, 'AgentCatchUp', parts, {
      hostPath: '$.host',
      request: '$.catchup',
      resultPath: '$.caughtUp',
    });
    const destinationLoaded = new sfn.Pass(this, 'DestinationLoaded', {
      parameters: {
        host: sfn.JsonPath.stringAt('$.host'),
        keyRange: sfn.JsonPath.stringAt('$.keyRange'),
        restored: sfn.JsonPath.objectAt('$.restored'),
        catchup: sfn.JsonPath.objectAt('$.catchup'),
        diff: sfn.JsonPath.objectAt('$.diff'),
      },
    });
    const destinations = new sfn.Map(this, 'RestoreDestinations', {
      itemsPath: '$.resolved.destinations',
      maxConcurrency: props.maxParallelDestinations,
      resultPath: '$.loaded',
    });
    destinations.itemProcessor(multirestore.next(catchUp).next(destinationLoaded));

    // The consistent point: the source replica stops where it is; every destination catches up to
    // exactly there and is diffed against a source that does not move; then the replica goes on.
    const stopSource = agentTask(this, 'AgentStopSourceReplication', parts, {
      hostPath: '$.sourceHost',
      request: '$.stopSourceReplication',
      resultPath: '$.consistentPoint',
    });
    const verify = verifyDestinations(this, parts, props.maxParallelDestinations, '');
    const startSource = agentTask(this, 'AgentStartSourceReplication', parts, {
      hostPath: '$.sourceHost',
      request: '$.startSourceReplication',
      resultPath: '$.sourceReplication',
    });
    // A failure at the consistent point starts the source replica again before the execution fails.
    const startSourceAfterFailure = agentTask(this, 'StartSourceReplicationAfterFailure', parts, {
      hostPath: '$.sourceHost',
      request: '$.startSourceReplication',
      resultPath: '$.sourceReplication',
    });
    const noCutover = new sfn.Pass(this, 'NoCutover', {
      result: sfn.Result.fromObject({}),
      resultPath: '$.cutover',
    });

    // Cutover: freeze the source primary, catch every destination up to its final position, diff,
    // then switch the serving shards. Any failure before the switch lets writes in again.
    const freeze = agentTask(this, 'AgentFreezeSource', parts, {
      hostPath: '$.resolved.cutover.host',
      request: '$.resolved.cutover.freeze',
      resultPath: '$.frozen',
    });
    const finalPosition = new sfn.Pass(this, 'FinalPosition', {
      parameters: { position: sfn.JsonPath.stringAt('$.frozen.position') },
      resultPath: '$.consistentPoint',
    });
    const verifyAtFreeze = verifyDestinations(
      this,
      parts,
      props.maxParallelDestinations,
      'AtFreeze',
      '$.freezeTimeoutSeconds',
    );
    const switchTopology = invoke(
      this,
      'SwitchTopology',
      fns['switch-topology'],
      {
        keyspace: sfn.JsonPath.stringAt('$.keyspace'),
        shard: sfn.JsonPath.stringAt('$.shard'),
        destinations: sfn.JsonPath.listAt('$.resolved.cutover.destinations'),
        frozenAt: sfn.JsonPath.stringAt('$.frozen.frozenAt'),
        freezeTimeoutSeconds: sfn.JsonPath.numberAt('$.freezeTimeoutSeconds'),
      },
      '$.switched',
    );
    const cutoverDone = new sfn.Pass(this, 'CutOver', {
      parameters: {
        position: sfn.JsonPath.stringAt('$.frozen.position'),
        frozenAt: sfn.JsonPath.stringAt('$.frozen.frozenAt'),
        frozenSeconds: sfn.JsonPath.numberAt('$.switched.frozenSeconds'),
        serving: sfn.JsonPath.listAt('$.switched.serving'),
        notServing: sfn.JsonPath.listAt('$.switched.notServing'),
      },
      resultPath: '$.cutover',
    });
    const unfreeze = agentTask(this, 'AgentUnfreezeSource', parts, {
      hostPath: '$.resolved.cutover.host',
      request: '$.resolved.cutover.unfreeze',
      resultPath: '$.unfrozen',
    });
    const report = new sfn.Pass(this, 'Resharded', {
      parameters: {
        keyspace: sfn.JsonPath.stringAt('$.keyspace'),
        shard: sfn.JsonPath.stringAt('$.shard'),
        snapshots: sfn.JsonPath.listAt('$.snapshot.snapshots'),
        snapshotPosition: sfn.JsonPath.stringAt('$.snapshot.position'),
        consistentPoint: sfn.JsonPath.objectAt('$.consistentPoint'),
        destinations: sfn.JsonPath.listAt('$.destinations'),
        cutover: sfn.JsonPath.objectAt('$.cutover'),
        wouldSwitch: sfn.JsonPath.objectAt('$.resolved.wouldSwitch'),
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
    for (const step of [
      validate,
      snapshot,
      validateSnapshots,
      resolve,
      destinations,
      stopSource,
      startSource,
      rebuild,
    ]) {
      step.addCatch(failure, { resultPath: ERROR_PATH });
    }
    verify.addCatch(startSourceAfterFailure, { resultPath: ERROR_PATH });
    startSourceAfterFailure.addCatch(failure, { resultPath: '$.startAfterFailureError' });
    startSourceAfterFailure.next(failure);
    for (const step of [freeze, verifyAtFreeze, switchTopology])
      step.addCatch(unfreeze, { resultPath: ERROR_PATH });
    unfreeze.addCatch(failure, { resultPath: '$.unfreezeError' });
    unfreeze.next(failure);
    const consistentPoint = new sfn.Choice(this, 'CutOverAfterDiff')
      .when(
        sfn.Condition.isNull('$.resolved.cutover'),
        stopSource.next(verify).next(startSource).next(noCutover).next(servingVSchema),
      )
      .otherwise(
        freeze
          .next(finalPosition)
          .next(verifyAtFreeze)
          .next(switchTopology)
          .next(cutoverDone)
          .next(servingVSchema),
      );
    this.stateMachine = standardMachine(this, 'StateMachine', {
      definition: validate
        .next(snapshot)
        .next(validateSnapshots)
        .next(resolve)
        .next(destinations)
        .next(consistentPoint),
      logKey: parts.logKey,
      comment:
        'stepback Reshard: snapshot a shard by key range or tables, restore and catch up each destination, diff each at a consistent point',
    });
  }
}

/**
 * Per destination: catch up to exactly `$.consistentPoint.position`, then diff against the source.
 * `suffix` names the second copy (the cutover's) apart from the first.
 */
function verifyDestinations(
  scope: Construct,
  parts: MachineParts,
  concurrency: number,
  suffix: string,
  /** Where the catch-up's time limit is (a cutover's freezeTimeoutSeconds); none when undefined. */
  timeoutPath?: string,
): sfn.Map {
  const untilPoint = new sfn.Pass(scope, `UntilConsistentPoint${suffix}`, {
    parameters: {
      until: sfn.JsonPath.stringAt('$.until'),
      ...(timeoutPath ? { timeoutSeconds: sfn.JsonPath.numberAt('$.timeoutSeconds') } : {}),
    },
    resultPath: '$.point',
  });
  const catchUpToPoint = agentTask(scope, `AgentCatchUpToPoint${suffix}`, parts, {
    hostPath: '$.host',
    request: sfn.JsonPath.jsonMerge(sfn.JsonPath.objectAt('$.catchup'), sfn.JsonPath.objectAt('$.point')),
    resultPath: '$.caughtUp',
  });
  const diff = agentTask(scope, `AgentDiff${suffix}`, parts, {
    hostPath: '$.host',
    request: '$.diff',
    resultPath: '$.diffResult',
  });
  const destinationDone = new sfn.Pass(scope, `DestinationDone${suffix}`, {
    parameters: {
      host: sfn.JsonPath.stringAt('$.host'),
      keyRange: sfn.JsonPath.stringAt('$.keyRange'),
      restored: sfn.JsonPath.objectAt('$.restored'),
      caughtUp: sfn.JsonPath.objectAt('$.caughtUp'),
      diff: sfn.JsonPath.objectAt('$.diffResult'),
    },
  });
  const verify = new sfn.Map(scope, `VerifyDestinations${suffix}`, {
    itemsPath: '$.loaded',
    maxConcurrency: concurrency,
    itemSelector: {
      host: sfn.JsonPath.stringAt('$$.Map.Item.Value.host'),
      keyRange: sfn.JsonPath.stringAt('$$.Map.Item.Value.keyRange'),
      restored: sfn.JsonPath.objectAt('$$.Map.Item.Value.restored'),
      catchup: sfn.JsonPath.objectAt('$$.Map.Item.Value.catchup'),
      diff: sfn.JsonPath.objectAt('$$.Map.Item.Value.diff'),
      until: sfn.JsonPath.stringAt('$.consistentPoint.position'),
      ...(timeoutPath ? { timeoutSeconds: sfn.JsonPath.numberAt(timeoutPath) } : {}),
    },
    resultPath: '$.destinations',
  });
  verify.itemProcessor(untilPoint.next(catchUpToPoint).next(diff).next(destinationDone));
  return verify;
}
