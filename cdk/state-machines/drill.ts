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

export interface DrillMachineProps {
  readonly parts: MachineParts;
}

/**
 * Drill (scheduled): validate input → plan (each shard's newest complete backup not drilled yet;
 * a drill host the topology lists as serving is refused) → per backup, one at a time on the drill
 * host, the agent's drill → drill age (the report, and the metric the drill alarm watches). A
 * failed drill does not stop the others; the execution then fails naming every one.
 */
export class DrillStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: DrillMachineProps) {
    super(scope, id);
    const { parts } = props;
    const fns = parts.functions;
    const failure = notifyAndFail(this, 'drill', parts);

    const validate = validateInput(this, parts, 'drill');
    const plan = invoke(
      this,
      'PlanDrills',
      fns['plan-drills'],
      {
        host: sfn.JsonPath.stringAt('$.host'),
        keyspaces: sfn.JsonPath.listAt('$.keyspaces'),
        request: sfn.JsonPath.objectAt('$.request'),
      },
      '$.plan',
    );

    const agentDrill = agentTask(this, 'AgentDrill', parts, {
      hostPath: '$.host',
      request: '$.drill.request',
      resultPath: '$.result',
    });
    const drillPassed = new sfn.Pass(this, 'DrillPassed', {
      parameters: {
        dir: sfn.JsonPath.stringAt('$.drill.dir'),
        backup: sfn.JsonPath.stringAt('$.drill.backup'),
        ok: true,
        tablesChecked: sfn.JsonPath.numberAt('$.result.tablesChecked'),
        seconds: sfn.JsonPath.numberAt('$.result.seconds'),
      },
    });
    // A failed drill (exit 5: VERIFICATION_FAILED, its findings in the cause) or one that could not run.
    const drillFailed = new sfn.Pass(this, 'DrillFailed', {
      parameters: {
        dir: sfn.JsonPath.stringAt('$.drill.dir'),
        backup: sfn.JsonPath.stringAt('$.drill.backup'),
        ok: false,
        error: sfn.JsonPath.stringAt(`${ERROR_PATH}.Error`),
        cause: sfn.JsonPath.stringAt(`${ERROR_PATH}.Cause`),
      },
    });
    agentDrill.addCatch(drillFailed, { resultPath: ERROR_PATH });
    // One drill host: its instance takes one drill at a time.
    const drills = new sfn.Map(this, 'DrillBackups', {
      itemsPath: '$.plan.drills',
      maxConcurrency: 1,
      itemSelector: {
        drill: sfn.JsonPath.objectAt('$$.Map.Item.Value'),
        host: sfn.JsonPath.stringAt('$.host'),
      },
      resultPath: '$.drills',
    });
    drills.itemProcessor(agentDrill.next(drillPassed));

    const age = invoke(
      this,
      'DrillAge',
      fns['drill-age'],
      { maxAgeDays: sfn.JsonPath.numberAt('$.maxAgeDays'), drills: sfn.JsonPath.listAt('$.drills') },
      '$.summary',
    );
    const allPassed = endWithSummary(
      this,
      { succeeded: 'Drilled', failed: 'DrillsFailed', choice: 'AllDrillsPassed' },
      failure,
    );

    for (const step of [validate, plan, drills, age]) step.addCatch(failure, { resultPath: ERROR_PATH });
    this.stateMachine = standardMachine(this, 'StateMachine', {
      definition: validate.next(plan).next(drills).next(age).next(allPassed),
      logKey: parts.logKey,
      comment: "stepback Drill: restore each shard's newest backup on the drill host and prove it",
    });
  }
}
