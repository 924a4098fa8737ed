import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

export interface DbHostPolicyProps {
  readonly bucket: s3.IBucket;
  /** The agent reads and writes only under this prefix. */
  readonly prefix: string;
  readonly key: kms.IKey;
  /** The state machines whose tasks the agent reports to. */
  readonly stateMachineArns: string[];
  /** The Run Command output log group. */
  readonly logGroupArn: string;
}

/**
 * The managed policy to attach to the DB hosts' instance role: what the agent needs and no more —
 * its bucket prefix, the Step Functions callbacks, the bucket key. (SSM's own agent needs
 * AmazonSSMManagedInstanceCore besides.)
 */
export class DbHostPolicy extends Construct {
  readonly policy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: DbHostPolicyProps) {
    super(scope, id);
    const objects = props.bucket.arnForObjects(`${props.prefix}/*`);
    this.policy = new iam.ManagedPolicy(this, 'Policy', {
      description:
        'stepback agent on DB hosts: backup objects under its prefix, task callbacks, the bucket key',
      statements: [
        new iam.PolicyStatement({
          sid: 'BackupObjects',
          actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
          resources: [objects],
        }),
        new iam.PolicyStatement({
          sid: 'ListBackupPrefix',
          actions: ['s3:ListBucket'],
          resources: [props.bucket.bucketArn],
          conditions: { StringLike: { 's3:prefix': [`${props.prefix}/*`, props.prefix] } },
        }),
        new iam.PolicyStatement({
          sid: 'TaskCallbacks',
          // The token authorises the task; the resource limits it to this stack's machines.
          actions: ['states:SendTaskHeartbeat', 'states:SendTaskSuccess', 'states:SendTaskFailure'],
          resources: props.stateMachineArns,
        }),
        new iam.PolicyStatement({
          sid: 'AgentOutputGroup',
          // The SSM agent looks the group up before it streams Run Command output to it.
          actions: ['logs:DescribeLogGroups'],
          resources: ['*'],
        }),
        new iam.PolicyStatement({
          sid: 'AgentOutput',
          actions: [
            'logs:CreateLogGroup',
            'logs:CreateLogStream',
            'logs:DescribeLogStreams',
            'logs:PutLogEvents',
          ],
          // The group's ARN ends in :*, which covers its streams.
          resources: [props.logGroupArn],
        }),
        new iam.PolicyStatement({
          sid: 'BucketKey',
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [props.key.keyArn],
        }),
      ],
    });
  }
}
