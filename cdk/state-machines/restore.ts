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

export interface RestoreMachineProps {
  readonly parts: MachineParts;
}

/**
 * Restore (console): validate input → list → choose → validate manifest → agent restore → the
 * restored backup and its replication position.
 */
export class RestoreStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: RestoreMachineProps) {
    super(scope, id);
    const { parts } = props;
    const fns = parts.functions;
    const failure = notifyAndFail(this, 'restore', parts);

    const validate = invoke(
      this,
      'ValidateInput',
      fns['validate-input'],
      { machine: 'restore', input: sfn.JsonPath.entirePayload },
      undefined,
    );
    const list = invoke(
      this,
      'ListBackups',
      fns['list-backups'],
      { dir: sfn.JsonPath.stringAt('$.dir') },
      '$.backups',
    );
    const choose = invoke(
      this,
      'ChooseBackup',
      fns['choose-backup'],
      {
        dir: sfn.JsonPath.stringAt('$.dir'),
        name: sfn.JsonPath.stringAt('$.choice.name'),
        atOrBefore: sfn.JsonPath.stringAt('$.choice.atOrBefore'),
        beforeGtid: sfn.JsonPath.stringAt('$.choice.beforeGtid'),
      },
      '$.chosen',
    );
    const validateManifest = invoke(
      this,
      'ValidateManifest',
      fns['validate-manifest'],
      { dir: sfn.JsonPath.stringAt('$.dir'), name: sfn.JsonPath.stringAt('$.chosen.name') },
      '$.validation',
    );
    const restore = agentTask(this, 'AgentRestore', parts, {
      hostPath: '$.host',
      request: sfn.JsonPath.jsonMerge(
        sfn.JsonPath.objectAt('$.request'),
        sfn.JsonPath.objectAt('$.chosen.selection'),
      ),
      resultPath: '$.restored',
    });
    const done = new sfn.Pass(this, 'Restored', {
      parameters: {
        keyspace: sfn.JsonPath.stringAt('$.keyspace'),
        shard: sfn.JsonPath.stringAt('$.shard'),
        host: sfn.JsonPath.stringAt('$.host'),
        backup: sfn.JsonPath.stringAt('$.chosen.name'),
        finishedAt: sfn.JsonPath.stringAt('$.chosen.finishedAt'),
        position: sfn.JsonPath.stringAt('$.chosen.position'),
        restore: sfn.JsonPath.objectAt('$.restored'),
      },
    });
    for (const step of [validate, list, choose, validateManifest, restore])
      step.addCatch(failure, { resultPath: ERROR_PATH });
    this.stateMachine = standardMachine(this, 'StateMachine', {
      definition: validate.next(list).next(choose).next(validateManifest).next(restore).next(done),
      logKey: parts.logKey,
      comment: 'stepback Restore: restore a chosen backup of a shard onto a host',
    });
  }
}
