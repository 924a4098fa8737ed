import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

export interface DbHostPolicyProps {
  readonly bucket: s3.IBucket;
  /** The agent reads and writes only under this prefix. */
  readonly prefix: string;
  readonly key: kms.IKey;
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
          // These actions take no resource: the task token is the authorisation.
          actions: ['states:SendTaskHeartbeat', 'states:SendTaskSuccess', 'states:SendTaskFailure'],
          resources: ['*'],
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
