import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';

export interface ExecutionAlarmsProps {
  readonly stateMachines: Record<string, sfn.StateMachine>;
  readonly topic: sns.ITopic;
}

/** An alarm on failed and one on timed-out executions of each state machine, to the topic. */
export class ExecutionAlarms extends Construct {
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: ExecutionAlarmsProps) {
    super(scope, id);
    const action = new actions.SnsAction(props.topic);
    for (const [name, machine] of Object.entries(props.stateMachines)) {
      const metrics = {
        Failed: machine.metricFailed({ period: Duration.minutes(5), statistic: 'Sum' }),
        TimedOut: machine.metricTimedOut({ period: Duration.minutes(5), statistic: 'Sum' }),
      };
      for (const [kind, metric] of Object.entries(metrics)) {
        const alarm = new cloudwatch.Alarm(this, `${name}${kind}`, {
          metric,
          threshold: 1,
          evaluationPeriods: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          alarmDescription: `A stepback ${name} execution ${kind === 'Failed' ? 'failed' : 'timed out'}`,
        });
        alarm.addAlarmAction(action);
        this.alarms.push(alarm);
      }
    }
  }
}
