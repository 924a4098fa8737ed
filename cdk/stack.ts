import { type CfnElement, CfnOutput, Duration, Stack, type StackProps, Token } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct, IConstruct } from 'constructs';
import { COMMAND_INVOCATION_STATUS_CHANGE, FAILED_COMMAND_STATUSES } from '../functions/command-statuses.ts';
import { AgentDocument } from './agent-document.ts';
import { ExecutionAlarms } from './alarms.ts';
import { BackupBucket } from './bucket.ts';
import { deploymentDefaults, type EnvironmentConfig } from './config.ts';
import { DrillAlarm } from './drill-alarm.ts';
import { FUNCTION_NAMES, StepbackFunctions } from './functions.ts';
import { DbHostPolicy } from './host-policy.ts';
import { acknowledgeFindings } from './nag.ts';
import { BackupBatchStateMachine, BackupStateMachine } from './state-machines/backup.ts';
import { BinlogArchiveStateMachine } from './state-machines/binlog-archive.ts';
import type { MachineParts } from './state-machines/common.ts';
import { DrillStateMachine } from './state-machines/drill.ts';
import { ReshardStateMachine } from './state-machines/reshard.ts';
import { RestoreStateMachine } from './state-machines/restore.ts';

export interface StepbackStackProps extends StackProps {
  /** The cdk.json environment name (dev, prod, …). */
  readonly environmentName: string;
  readonly config: EnvironmentConfig;
}

/** One environment of stepback: bucket, agent document, Lambdas, four state machines (and the Backup batches), schedules, alarms. */
export class StepbackStack extends Stack {
  readonly backup: BackupStateMachine;
  readonly restore: RestoreStateMachine;
  readonly reshard: ReshardStateMachine;
  readonly drill: DrillStateMachine;
  readonly binlogArchive: BinlogArchiveStateMachine;

  constructor(scope: Construct, id: string, props: StepbackStackProps) {
    super(scope, id, props);
    const { config } = props;

    const stackKey = new kms.Key(this, 'Key', {
      enableKeyRotation: true,
      description: `stepback ${props.environmentName}: logs, alarm topic${config.kmsKeyArn ? '' : ', backups'}`,
    });
    stackKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchLogs',
        principals: [new iam.ServicePrincipal(`logs.${this.region}.amazonaws.com`)],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: {
          ArnLike: {
            'kms:EncryptionContext:aws:logs:arn': `arn:${this.partition}:logs:${this.region}:${this.account}:*`,
          },
        },
      }),
    );
    stackKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AlarmsPublishToEncryptedTopic',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );
    const bucketKey = config.kmsKeyArn ? kms.Key.fromKeyArn(this, 'BucketKey', config.kmsKeyArn) : stackKey;
    const { bucket } = new BackupBucket(this, 'Backups', {
      encryptionKey: bucketKey,
      noncurrentVersionDays: config.noncurrentVersionDays,
    });

    const topic: sns.ITopic = config.alarms.topicArn
      ? sns.Topic.fromTopicArn(this, 'AlarmTopic', config.alarms.topicArn)
      : new sns.Topic(this, 'AlarmTopic', {
          masterKey: stackKey,
          enforceSSL: true,
          displayName: 'stepback alarms',
        });
    if (config.alarms.email && topic instanceof sns.Topic) {
      topic.addSubscription(new subscriptions.EmailSubscription(config.alarms.email));
    }

    const agentLogGroup = new logs.LogGroup(this, 'AgentLogs', {
      retention: logs.RetentionDays.THREE_MONTHS,
      encryptionKey: stackKey,
    });
    const document = new AgentDocument(this, 'Agent', {
      command: config.agent.command,
      environmentFile: config.agent.environmentFile,
      // The script may run as long as the task waits for it.
      timeoutSeconds: config.agent.timeoutHours * 3600,
    });

    const defaults = deploymentDefaults(config);
    const { functions } = new StepbackFunctions(this, 'Functions', {
      environment: {
        STEPBACK_STORAGE_URL: `s3://${bucket.bucketName}/${config.storagePrefix}`,
        STEPBACK_DEFAULTS: JSON.stringify(defaults),
        ...(config.topology ? { STEPBACK_TOPOLOGY_URL: config.topology } : {}),
      },
      logRetention: logs.RetentionDays.THREE_MONTHS,
    });
    const prefixObjects = `${config.storagePrefix}/*`;
    for (const name of [
      'list-backups',
      'choose-backup',
      'validate-manifest',
      'plan-drills',
      'drill-age',
    ] as const) {
      bucket.grantRead(functions[name], prefixObjects);
    }
    bucket.grantRead(functions['prune-backups'], prefixObjects);
    bucket.grantDelete(functions['prune-backups'], prefixObjects);
    if (config.topology) {
      // resolve-targets reads shards; rebuild-vschema reads keyspaces and writes serving vschemas;
      // switch-topology writes the shard records of a cutover.
      const parameters = topologyParameterArns(this, config.topology);
      const read = ['ssm:GetParameter', 'ssm:GetParametersByPath'];
      for (const name of ['resolve-targets', 'plan-drills'] as const) {
        functions[name].addToRolePolicy(
          new iam.PolicyStatement({ sid: 'TopologyRead', actions: read, resources: parameters }),
        );
      }
      for (const name of ['rebuild-vschema', 'switch-topology'] as const) {
        functions[name].addToRolePolicy(
          new iam.PolicyStatement({
            sid: 'TopologyReadWrite',
            actions: [...read, 'ssm:PutParameter', 'ssm:DeleteParameters'],
            resources: parameters,
          }),
        );
      }
    }

    const parts: MachineParts = {
      functions,
      documentName: document.documentName,
      documentArn: this.formatArn({
        service: 'ssm',
        resource: 'document',
        resourceName: document.documentName,
      }),
      topic,
      agentLogGroup,
      heartbeatSeconds: config.agent.heartbeatSeconds,
      timeoutHours: config.agent.timeoutHours,
      logKey: stackKey,
      hostTag: config.agent.hostTag,
    };
    const backupBatch = new BackupBatchStateMachine(this, 'BackupBatch', {
      parts,
      maxParallelShards: config.backup.maxParallelShards,
    });
    this.backup = new BackupStateMachine(this, 'Backup', {
      parts,
      maxParallelShards: config.backup.maxParallelShards,
      batch: backupBatch.stateMachine,
    });
    this.restore = new RestoreStateMachine(this, 'Restore', { parts });
    this.reshard = new ReshardStateMachine(this, 'Reshard', {
      parts,
      maxParallelDestinations: config.backup.maxParallelShards,
    });
    this.drill = new DrillStateMachine(this, 'Drill', { parts });
    this.binlogArchive = new BinlogArchiveStateMachine(this, 'BinlogArchive', {
      parts,
      maxParallelShards: config.backup.maxParallelShards,
    });
    const machines = {
      Backup: this.backup.stateMachine,
      Restore: this.restore.stateMachine,
      Reshard: this.reshard.stateMachine,
      Drill: this.drill.stateMachine,
      BinlogArchive: this.binlogArchive.stateMachine,
    };
    // Every machine that runs agent tasks (the batches of a large Backup too).
    const agentMachines = [...Object.values(machines), backupBatch.stateMachine];

    if (topic instanceof sns.Topic) {
      // The topic is encrypted with the stack key: publishing needs a data key from it.
      for (const machine of Object.values(machines)) {
        stackKey.grant(machine, 'kms:Decrypt', 'kms:GenerateDataKey*');
      }
    }

    // Events EventBridge could not deliver after its retries; alarmed on.
    const deadLetters = new sqs.Queue(this, 'UndeliveredEvents', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    const delivery = { deadLetterQueue: deadLetters, retryAttempts: 8, maxEventAge: Duration.hours(2) };

    if (config.backup.schedule) {
      new events.Rule(this, 'BackupSchedule', {
        description: `stepback ${props.environmentName}: scheduled backups`,
        schedule: events.Schedule.expression(config.backup.schedule),
        targets: [
          new targets.SfnStateMachine(this.backup.stateMachine, {
            input: events.RuleTargetInput.fromObject({
              ...(config.backup.targets ? { targets: config.backup.targets } : {}),
              ...(config.backup.keyspaces ? { keyspaces: config.backup.keyspaces } : {}),
              retention: config.retention,
            }),
            ...delivery,
          }),
        ],
      });
    }

    if (config.drill.host) {
      new events.Rule(this, 'DrillSchedule', {
        description: `stepback ${props.environmentName}: scheduled restore drills`,
        schedule: events.Schedule.expression(config.drill.schedule),
        targets: [
          new targets.SfnStateMachine(this.drill.stateMachine, {
            input: events.RuleTargetInput.fromObject({
              host: config.drill.host,
              ...(config.drill.defaultsFile ? { defaultsFile: config.drill.defaultsFile } : {}),
              ...(config.drill.keyspaces ? { keyspaces: config.drill.keyspaces } : {}),
              maxAgeDays: config.drill.maxAgeDays,
            }),
            ...delivery,
          }),
        ],
      });
      new DrillAlarm(this, 'DrillAge', {
        drillAge: functions['drill-age'],
        storageUrl: `s3://${bucket.bucketName}/${config.storagePrefix}`,
        maxAgeDays: config.drill.maxAgeDays,
        topic,
        delivery,
      });
    }

    if (config.binlogArchive) {
      new events.Rule(this, 'BinlogArchiveSchedule', {
        description: `stepback ${props.environmentName}: binary logs archived for point-in-time restores`,
        schedule: events.Schedule.expression(config.binlogArchive.schedule),
        targets: [
          new targets.SfnStateMachine(this.binlogArchive.stateMachine, {
            input: events.RuleTargetInput.fromObject({
              ...(config.backup.targets ? { targets: config.backup.targets } : {}),
              ...(config.backup.keyspaces ? { keyspaces: config.backup.keyspaces } : {}),
              maxAge: config.binlogArchive.maxAge,
            }),
            ...delivery,
          }),
        ],
      });
    }

    // The failure path: a command that ends badly outside the agent fails its task at once.
    const commandFailed = functions['command-failed'];
    new events.Rule(this, 'AgentCommandFailed', {
      description: `stepback ${props.environmentName}: fail the task of an agent command that ended without reporting`,
      eventPattern: {
        source: ['aws.ssm'],
        detailType: [COMMAND_INVOCATION_STATUS_CHANGE],
        detail: { 'document-name': [document.documentName], status: [...FAILED_COMMAND_STATUSES] },
      },
      targets: [new targets.LambdaFunction(commandFailed, delivery)],
    });
    commandFailed.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadCommands',
        // Neither action takes a resource.
        actions: ['ssm:ListCommands', 'ssm:GetCommandInvocation'],
        resources: ['*'],
      }),
    );
    commandFailed.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'FailAgentTasks',
        actions: ['states:SendTaskFailure'],
        resources: agentMachines.map((machine) => machine.stateMachineArn),
      }),
    );

    new ExecutionAlarms(this, 'Alarms', {
      stateMachines: machines,
      topic,
      ...(config.backup.schedule ? { backup: this.backup.stateMachine } : {}),
      deadLetterQueue: deadLetters,
    });

    const hostPolicy = new DbHostPolicy(this, 'DbHost', {
      bucket,
      prefix: config.storagePrefix,
      key: bucketKey,
      stateMachineArns: agentMachines.map((machine) => machine.stateMachineArn),
      logGroupArn: agentLogGroup.logGroupArn,
    });

    new CfnOutput(this, 'BucketName', { value: bucket.bucketName });
    new CfnOutput(this, 'AgentDocumentName', { value: document.documentName });
    new CfnOutput(this, 'DbHostPolicyArn', { value: hostPolicy.policy.managedPolicyArn });
    for (const [name, machine] of Object.entries(machines)) {
      new CfnOutput(this, `${name}StateMachineArn`, { value: machine.stateMachineArn });
    }
    const logicalId = (construct: IConstruct) => this.getLogicalId(construct.node.defaultChild as CfnElement);
    acknowledgeFindings(this, {
      functions: Object.values(functions),
      commandFailed,
      stateMachines: agentMachines,
      publishers: Object.values(machines),
      backupMachine: this.backup.stateMachine,
      backupBatchLogicalId: logicalId(backupBatch.stateMachine),
      // cdk-nag names them as synthesized: resolved when the stack has an explicit env.
      region: Token.isUnresolved(this.region) ? '<AWS::Region>' : this.region,
      account: Token.isUnresolved(this.account) ? '<AWS::AccountId>' : this.account,
      hostPolicy: hostPolicy.policy,
      deadLetterQueue: deadLetters,
      bucketLogicalId: logicalId(bucket),
      storagePrefix: config.storagePrefix,
      backupReaders: (
        [
          'list-backups',
          'choose-backup',
          'validate-manifest',
          'prune-backups',
          'plan-drills',
          'drill-age',
        ] as const
      ).map((name) => functions[name]),
      invokedFunctionLogicalIds: FUNCTION_NAMES.filter((name) => name !== 'command-failed').map((name) =>
        logicalId(functions[name]),
      ),
      ...(config.topology
        ? {
            topology: {
              url: config.topology,
              functions: [
                functions['resolve-targets'],
                functions['rebuild-vschema'],
                functions['plan-drills'],
                functions['switch-topology'],
              ],
            },
          }
        : {}),
    });
  }
}

/** The topology prefix (`ssm:/stepback/prod`) as the parameter ARNs of the prefix and everything under it. */
export function topologyParameterArns(stack: Stack, topology: string): string[] {
  const prefix = topology.slice('ssm:'.length).replace(/\/+$/, '');
  const arn = (name: string) =>
    stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: name.replace(/^\//, '') });
  return [arn(prefix), arn(`${prefix}/*`)];
}
