import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DRILL_METRIC } from '../functions/drill-age.ts';

export interface DrillAlarmProps {
  /** The function that computes the drill report and publishes the metric. */
  readonly drillAge: lambda.IFunction;
  /** The storage URL the function reports on: the metric's Storage dimension. */
  readonly storageUrl: string;
  readonly maxAgeDays: number;
  readonly topic: sns.ITopic;
  readonly delivery: { deadLetterQueue: sqs.IQueue; retryAttempts: number; maxEventAge: Duration };
}

/**
 * The alarm that a shard has no passing drill within `maxAgeDays`: drill-age runs daily and
 * publishes how many shards are overdue; the alarm fires on one or more, and on a day without a
 * value (a report that did not run proves nothing).
 */
export class DrillAlarm extends Construct {
  readonly alarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: DrillAlarmProps) {
    super(scope, id);
    new events.Rule(this, 'Daily', {
      description: 'stepback: compute the drill report and publish the overdue shards',
      schedule: events.Schedule.rate(Duration.days(1)),
      targets: [
        new targets.LambdaFunction(props.drillAge, {
          event: events.RuleTargetInput.fromObject({ maxAgeDays: props.maxAgeDays }),
          ...props.delivery,
        }),
      ],
    });
    this.alarm = new cloudwatch.Alarm(this, 'NoRecentPassingDrill', {
      metric: new cloudwatch.Metric({
        namespace: DRILL_METRIC.namespace,
        metricName: DRILL_METRIC.name,
        dimensionsMap: { Storage: props.storageUrl },
        statistic: 'Maximum',
        period: Duration.days(1),
      }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      alarmDescription: `A stepback shard has no passing restore drill within ${props.maxAgeDays} days (or the daily drill report did not run): see stepback backups report`,
    });
    this.alarm.addAlarmAction(new actions.SnsAction(props.topic));
  }
}
