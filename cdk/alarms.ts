import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';

export interface ExecutionAlarmsProps {
  readonly stateMachines: Record<string, sfn.StateMachine>;
  readonly topic: sns.ITopic;
  /** The machine that must succeed at least once every `backupWithinHours` (scheduled backups). */
  readonly backup?: sfn.StateMachine;
  /** Default 26: a daily schedule plus two hours of slack. */
  readonly backupWithinHours?: number;
  /** Events that EventBridge could not deliver (the schedule, the command failure path). */
  readonly deadLetterQueue?: sqs.IQueue;
}

/**
 * To the topic: failed, timed-out and aborted executions of each state machine; no successful
 * Backup for a day and more (a schedule that stopped firing, or whose runs never end, is
 * silent otherwise); and any event left in the dead-letter queue.
 */
export class ExecutionAlarms extends Construct {
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: ExecutionAlarmsProps) {
    super(scope, id);
    const action = new actions.SnsAction(props.topic);
    const add = (alarm: cloudwatch.Alarm) => {
      alarm.addAlarmAction(action);
      this.alarms.push(alarm);
    };
    for (const [name, machine] of Object.entries(props.stateMachines)) {
      const metrics = {
        Failed: machine.metricFailed({ period: Duration.minutes(5), statistic: 'Sum' }),
        TimedOut: machine.metricTimedOut({ period: Duration.minutes(5), statistic: 'Sum' }),
        Aborted: machine.metricAborted({ period: Duration.minutes(5), statistic: 'Sum' }),
      };
      const said = { Failed: 'failed', TimedOut: 'timed out', Aborted: 'was aborted' };
      for (const [kind, metric] of Object.entries(metrics)) {
        add(
          new cloudwatch.Alarm(this, `${name}${kind}`, {
            metric,
            threshold: 1,
            evaluationPeriods: 1,
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
            alarmDescription: `A stepback ${name} execution ${said[kind as keyof typeof said]}`,
          }),
        );
      }
    }
    if (props.backup) {
      const hours = props.backupWithinHours ?? 26;
      // Hourly sums: an hour without executions has no data, which counts as breaching.
      add(
        new cloudwatch.Alarm(this, 'NoSuccessfulBackup', {
          metric: props.backup.metricSucceeded({ period: Duration.hours(1), statistic: 'Sum' }),
          threshold: 1,
          evaluationPeriods: hours,
          datapointsToAlarm: hours,
          comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.BREACHING,
          alarmDescription: `No stepback Backup execution succeeded in ${hours} hours`,
        }),
      );
    }
    if (props.deadLetterQueue) {
      add(
        new cloudwatch.Alarm(this, 'UndeliveredEvents', {
          metric: props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            period: Duration.minutes(5),
            statistic: 'Maximum',
          }),
          threshold: 1,
          evaluationPeriods: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          alarmDescription:
            'EventBridge could not deliver a stepback event (a scheduled Backup or a failed agent command): see the dead-letter queue',
        }),
      );
    }
  }
}
