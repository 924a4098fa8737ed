import { type Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** One accepted AwsSolutions finding and why. */
export interface Acknowledgment {
  readonly id: string;
  readonly reason: string;
}

/**
 * The AwsSolutions findings this stack accepts, each with why. Anything not listed here fails
 * synth.
 */
export const ACKNOWLEDGMENTS: readonly Acknowledgment[] = [
  {
    id: 'AwsSolutions::AwsSolutions-S1',
    reason:
      'Backup objects are audited with CloudTrail S3 data events, configured per account; a server access log bucket per environment would be one more bucket to secure and retain.',
  },
  {
    id: 'AwsSolutions::AwsSolutions-L1',
    reason: 'The functions run on Node.js 22, the runtime stepback is built and tested on.',
  },
  {
    id: 'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    reason: 'AWSLambdaBasicExecutionRole only lets a function write its own log streams.',
  },
  {
    id: 'AwsSolutions::AwsSolutions-IAM5[Action::s3:GetObject*]',
    reason: 'Read access granted by grantRead, limited to the backup prefix of the bucket.',
  },
  {
    id: 'AwsSolutions::AwsSolutions-IAM5[Action::s3:GetBucket*]',
    reason: 'Read access granted by grantRead on the backup bucket only.',
  },
  {
    id: 'AwsSolutions::AwsSolutions-IAM5[Action::s3:List*]',
    reason: 'Listing the backups of a shard; the bucket holds only backups.',
  },
  {
    id: 'AwsSolutions::AwsSolutions-IAM5[Action::s3:DeleteObject*]',
    reason: 'prune-backups removes backups that retention no longer keeps, under the backup prefix only.',
  },
];

/** The constructs whose own wildcard findings are accepted, each on that construct alone. */
export interface AcknowledgedConstructs {
  /** Lambdas: X-Ray trace segments take no resource. */
  readonly functions: readonly IConstruct[];
  /** The failure-path Lambda: ListCommands and GetCommandInvocation take no resource. */
  readonly commandFailed: IConstruct;
  /** State machines that run agent tasks: X-Ray, log delivery set-up, the DB hosts by tag. */
  readonly stateMachines: readonly IConstruct[];
  /** State machines that publish to the alarm topic: the stack key's data keys. */
  readonly publishers: readonly IConstruct[];
  /** The Backup machine: it runs and watches its batch executions. */
  readonly backupMachine: IConstruct;
  /** The batch machine's logical id, as the Backup machine's execution ARN pattern names it. */
  readonly backupBatchLogicalId: string;
  readonly region: string;
  readonly account: string;
  /** The DB hosts' policy: logs:DescribeLogGroups takes no resource. */
  readonly hostPolicy: IConstruct;
  /** The backup bucket's logical id and the prefix backups live under. */
  readonly bucketLogicalId: string;
  readonly storagePrefix: string;
  /** Functions that read or delete backups, by the grants on the prefix. */
  readonly backupReaders: readonly IConstruct[];
  /** The logical ids of the functions the state machines invoke (granted with `:*`). */
  readonly invokedFunctionLogicalIds: readonly string[];
  /** The topology prefix (`ssm:/stepback/prod`) and the functions that read or write it. */
  readonly topology?: { readonly url: string; readonly functions: readonly IConstruct[] };
  /** EventBridge's dead-letter queue. */
  readonly deadLetterQueue: IConstruct;
}

const WILDCARD = 'AwsSolutions::AwsSolutions-IAM5[Resource::*]';

/** Findings accepted on one construct each, with why. */
export function constructAcknowledgments(
  constructs: AcknowledgedConstructs,
): { scope: IConstruct; acknowledgment: Acknowledgment }[] {
  return [
    ...constructs.functions.map((scope) => ({
      scope,
      acknowledgment: {
        id: WILDCARD,
        reason: 'X-Ray PutTraceSegments and PutTelemetryRecords take no resource.',
      },
    })),
    {
      scope: constructs.commandFailed,
      acknowledgment: {
        id: WILDCARD,
        reason:
          'ssm:ListCommands and ssm:GetCommandInvocation take no resource; the function only reads the command that failed.',
      },
    },
    ...constructs.stateMachines.flatMap((scope) => [
      {
        scope,
        acknowledgment: {
          id: WILDCARD,
          reason:
            'X-Ray trace segments and CloudWatch Logs delivery set-up (CreateLogDelivery and the like) take no resource.',
        },
      },
      {
        scope,
        acknowledgment: {
          id: 'AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
          reason:
            'The DB host of each run comes from the execution input or the topology store; SendCommand is limited to instances with the stepback host tag and to the agent document.',
        },
      },
      {
        scope,
        acknowledgment: {
          id: 'AwsSolutions::AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
          reason:
            'Publishing to the alarm topic, encrypted with the stack key, needs a data key of that key only.',
        },
      },
    ]),
    {
      scope: constructs.backupMachine,
      acknowledgment: {
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:${constructs.region}:${constructs.account}:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${constructs.backupBatchLogicalId}"}]}]}*]`,
        reason:
          'A large Backup starts its batches and watches them (DescribeExecution, StopExecution): the executions of the batch machine only.',
      },
    },
    {
      scope: constructs.hostPolicy,
      acknowledgment: {
        id: WILDCARD,
        reason:
          'logs:DescribeLogGroups takes no resource; the SSM agent calls it before it streams Run Command output to the agent log group.',
      },
    },
    ...[...constructs.backupReaders, constructs.hostPolicy].map((scope) => ({
      scope,
      acknowledgment: {
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::<${constructs.bucketLogicalId}.Arn>/${constructs.storagePrefix}/*]`,
        reason: 'Backup objects are named per shard and time; access is limited to the backup prefix.',
      },
    })),
    ...constructs.stateMachines.flatMap((scope) =>
      constructs.invokedFunctionLogicalIds.map((logicalId) => ({
        scope,
        acknowledgment: {
          id: `AwsSolutions::AwsSolutions-IAM5[Resource::<${logicalId}.Arn>:*]`,
          reason:
            'Step Functions invokes the function and its versions; CDK grants the function ARN with :*.',
        },
      })),
    ),
    ...topologyAcknowledgments(constructs),
    {
      scope: constructs.deadLetterQueue,
      acknowledgment: {
        id: 'AwsSolutions::AwsSolutions-SQS3',
        reason:
          'This queue is the dead-letter queue of EventBridge targets (the schedule and the failure path).',
      },
    },
  ];
}

/** The topology store's parameters, on the functions that use them. */
function topologyAcknowledgments(constructs: AcknowledgedConstructs) {
  if (!constructs.topology) return [];
  const prefix = constructs.topology.url.slice('ssm:'.length).replace(/\/+$/, '').replace(/^\//, '');
  return constructs.topology.functions.map((scope) => ({
    scope,
    acknowledgment: {
      id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:${constructs.region}:${constructs.account}:parameter/${prefix}/*]`,
      reason:
        'The topology store is one parameter per cell, keyspace and shard under the environment prefix; resolve-targets, rebuild-vschema and switch-topology read (and the last two write) only under it.',
    },
  }));
}

export function acknowledgeFindings(stack: Stack, constructs: AcknowledgedConstructs): void {
  for (const acknowledgment of ACKNOWLEDGMENTS) Validations.of(stack).acknowledge(acknowledgment);
  for (const { scope, acknowledgment } of constructAcknowledgments(constructs)) {
    Validations.of(scope).acknowledge(acknowledgment);
  }
}
