import { createRequire } from 'node:module';
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseEnvironmentConfig } from '../../cdk/config.ts';
import { ACKNOWLEDGMENTS } from '../../cdk/nag.ts';
import { StepbackStack } from '../../cdk/stack.ts';
import { REQUEST_B64_PATTERN, TASK_TOKEN_PATTERN } from '../../core/agent-request.ts';
import {
  allStates,
  type CloudFormationTemplate,
  type MachineName,
  type StateMachineDefinition,
  stateMachineDefinitions,
} from '../../local/template.ts';
import { tempDir } from '../support/root.ts';

const require = createRequire(import.meta.url);
const aslValidator = require('asl-validator') as (definition: unknown) => {
  isValid: boolean;
  errorsText: (separator?: string) => string;
};

const config = parseEnvironmentConfig('dev', {
  account: '111111111111',
  region: 'eu-west-1',
  backup: {
    schedule: 'cron(0 3 * * ? *)',
    targets: [{ keyspace: 'commerce', shard: '0', host: 'i-0123456789abcdef0' }],
    maxParallelShards: 3,
  },
  retention: { keepCount: 3, keepDays: 7 },
  alarms: { email: 'dba@example.com' },
  topology: 'ssm:/stepback/dev',
});

let template: Template;
let definitions: Record<MachineName, StateMachineDefinition>;
let synthError: unknown;

// One stack for the whole file: a cold Template.fromStack costs seconds.
beforeAll(async () => {
  const outdir = await tempDir('cdk-stack');
  const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new StepbackStack(app, 'Stepback-dev', {
    env: { account: config.account, region: config.region },
    environmentName: 'dev',
    config,
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  try {
    app.synth();
  } catch (error) {
    synthError = error;
  }
  template = Template.fromStack(stack);
  definitions = stateMachineDefinitions(template.toJSON() as CloudFormationTemplate);
});

describe('the stack', () => {
  it('has no unacknowledged AwsSolutions finding, and every acknowledgment says why', () => {
    expect(synthError).toBeUndefined();
    for (const acknowledgment of ACKNOWLEDGMENTS) expect(acknowledgment.reason.length).toBeGreaterThan(30);
  });

  it('keeps backups in a KMS-encrypted, private, TLS-only, versioned bucket with lifecycle rules', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          Match.objectLike({
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }),
          }),
        ],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      VersioningConfiguration: { Status: 'Enabled' },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 2 } }),
          Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 30 } }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain' });
  });

  it('runs the agent through an SSM document that takes only patterned base64 and a token', () => {
    const documents = template.findResources('AWS::SSM::Document');
    const [document] = Object.values(documents) as { Properties: { Content: Record<string, any> } }[];
    const content = document!.Properties.Content;
    expect(Object.keys(content.parameters)).toEqual(['request', 'taskToken']);
    expect(content.parameters.request.allowedPattern).toBe(REQUEST_B64_PATTERN);
    expect(content.parameters.taskToken.allowedPattern).toBe(TASK_TOKEN_PATTERN);
    const script = JSON.stringify(content.mainSteps[0].inputs.runCommand);
    expect(script).toContain("run --request-b64 '{{ request }}' --task-token '{{ taskToken }}'");
  });

  it('deploys every function on Node 22, traced, with the storage URL and deployment defaults', () => {
    const functions = template.findResources('AWS::Lambda::Function');
    const names = Object.values(functions).map(
      (f: any) => f.Properties.Environment.Variables.STEPBACK_FUNCTION,
    );
    expect(names.sort()).toEqual([
      'choose-backup',
      'list-backups',
      'notify',
      'prune-backups',
      'rebuild-vschema',
      'resolve-targets',
      'summarize-shards',
      'validate-input',
      'validate-manifest',
    ]);
    for (const fn of Object.values(functions) as any[]) {
      expect(fn.Properties.Runtime).toBe('nodejs22.x');
      expect(fn.Properties.TracingConfig).toEqual({ Mode: 'Active' });
      expect(JSON.parse(fn.Properties.Environment.Variables.STEPBACK_DEFAULTS).retention).toEqual({
        keepCount: 3,
        keepDays: 7,
      });
    }
  });

  it('has three Standard state machines with every event logged and X-Ray tracing', () => {
    template.resourceCountIs('AWS::StepFunctions::StateMachine', 3);
    template.allResourcesProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: Match.objectLike({ Level: 'ALL', IncludeExecutionData: true }),
    });
  });

  it('schedules the Backup state machine with the environment’s targets and retention', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(0 3 * * ? *)',
      Targets: [
        Match.objectLike({
          Input: JSON.stringify({
            targets: [{ keyspace: 'commerce', shard: '0', host: 'i-0123456789abcdef0' }],
            retention: { keepCount: 3, keepDays: 7 },
          }),
        }),
      ],
    });
  });

  it('alarms on failed and timed-out executions of each machine to the SNS topic', () => {
    for (const metric of ['ExecutionsFailed', 'ExecutionsTimedOut']) {
      expect(
        Object.keys(template.findResources('AWS::CloudWatch::Alarm', { Properties: { MetricName: metric } })),
      ).toHaveLength(3);
    }
    template.allResourcesProperties('AWS::CloudWatch::Alarm', {
      AlarmActions: [{ Ref: Match.stringLikeRegexp('AlarmTopic') }],
    });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'dba@example.com',
    });
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
  });

  it('gives DB hosts a managed policy limited to their prefix, the callbacks and the key', () => {
    const [policy] = Object.values(template.findResources('AWS::IAM::ManagedPolicy')) as any[];
    const statements = policy.Properties.PolicyDocument.Statement as any[];
    const actions = statements.flatMap((s) => [s.Action].flat());
    expect(actions.sort()).toEqual(
      [
        'kms:Decrypt',
        'kms:GenerateDataKey',
        'logs:CreateLogStream',
        'logs:DescribeLogStreams',
        'logs:PutLogEvents',
        's3:AbortMultipartUpload',
        's3:DeleteObject',
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
        'states:SendTaskFailure',
        'states:SendTaskHeartbeat',
        'states:SendTaskSuccess',
      ].sort(),
    );
    const objects = statements.find((s) => s.Sid === 'BackupObjects');
    expect(JSON.stringify(objects.Resource)).toContain('/backups/*');
    expect(statements.find((s) => s.Sid === 'ListBackupPrefix').Condition).toEqual({
      StringLike: { 's3:prefix': ['backups/*', 'backups'] },
    });
  });
});

describe('the topology store', () => {
  it('is read by resolve-targets and written by rebuild-vschema, under its prefix only', () => {
    const policies = Object.values(template.findResources('AWS::IAM::Policy')) as any[];
    const statements = policies.flatMap((p) => p.Properties.PolicyDocument.Statement as any[]);
    const topology = statements.filter((s) =>
      [s.Action].flat().some((a: string) => /^ssm:.*Parameter/.test(a)),
    );
    expect(topology.map((s) => [s.Sid, [s.Action].flat().sort()])).toEqual([
      ['TopologyRead', ['ssm:GetParameter', 'ssm:GetParametersByPath']],
      [
        'TopologyReadWrite',
        ['ssm:DeleteParameters', 'ssm:GetParameter', 'ssm:GetParametersByPath', 'ssm:PutParameter'],
      ],
    ]);
    for (const statement of topology) {
      expect(JSON.stringify(statement.Resource)).toMatch(/:parameter\/stepback\/dev"/);
      expect(JSON.stringify(statement.Resource)).toMatch(/:parameter\/stepback\/dev\/\*"/);
    }
    const functions = Object.values(template.findResources('AWS::Lambda::Function')) as any[];
    for (const fn of functions) {
      expect(fn.Properties.Environment.Variables.STEPBACK_TOPOLOGY_URL).toBe('ssm:/stepback/dev');
    }
  });

  it('has its serving vschema rebuilt after a reshard when the deployment has one', () => {
    const states = definitions.reshard.States;
    expect(states.RestoreDestinations!.Next).toBe('HasTopologyStore');
    expect(states.HasTopologyStore).toMatchObject({
      Type: 'Choice',
      Choices: [{ Variable: '$.vschema', IsNull: true, Next: 'NoTopologyStore' }],
      Default: 'RebuildVSchema',
    });
    expect(states.RebuildVSchema!.Next).toBe('Resharded');
    expect(states.RebuildVSchema!.Catch).toEqual([expect.objectContaining({ Next: 'Notify' })]);
  });
});

describe('the state machine definitions', () => {
  it('pass asl-validator', () => {
    for (const [name, definition] of Object.entries(definitions)) {
      const result = aslValidator(structuredClone(definition));
      expect(result.errorsText(), name).toBe('');
      expect(result.isValid).toBe(true);
    }
  });

  it('use JSONPath only: no JSONata, no Assign', () => {
    for (const definition of Object.values(definitions)) {
      const text = JSON.stringify(definition);
      expect(text).not.toContain('JSONata');
      expect(text).not.toContain('"Assign"');
    }
  });

  it('send agent work through SSM with the task token, a heartbeat, a timeout and a busy retry', () => {
    const agentStates = Object.values(definitions).flatMap((d) =>
      allStates(d).filter(
        ([, state]) => state.Resource === 'arn:aws:states:::aws-sdk:ssm:sendCommand.waitForTaskToken',
      ),
    );
    expect(agentStates.map(([name]) => name).sort()).toEqual([
      'AgentBackup',
      'AgentDiff',
      'AgentMultirestore',
      'AgentRestore',
      'AgentSnapshot',
    ]);
    for (const [, state] of agentStates) {
      expect(state.HeartbeatSeconds).toBe(300);
      expect(state.TimeoutSeconds).toBe(24 * 3600);
      const parameters = state.Parameters as any;
      expect(parameters['InstanceIds.$']).toMatch(/^States\.Array\(\$\./);
      expect(parameters.Parameters['request.$']).toMatch(
        /^States\.Array\(States\.Base64Encode\(States\.JsonToString\(/,
      );
      expect(parameters.Parameters['taskToken.$']).toBe('States.Array($$.Task.Token)');
      expect(state.Retry).toEqual(
        expect.arrayContaining([expect.objectContaining({ ErrorEquals: ['INSTANCE_BUSY'] })]),
      );
    }
  });

  it('start with input validation and end every failure in notify then a Fail with the caught code', () => {
    for (const definition of Object.values(definitions)) {
      expect(definition.StartAt).toBe('ValidateInput');
      expect(definition.States.Failed).toMatchObject({
        Type: 'Fail',
        ErrorPath: '$.notice.error',
        CausePath: '$.notice.cause',
      });
      expect(definition.States.ValidateInput!.Catch).toEqual([
        expect.objectContaining({ ErrorEquals: ['States.ALL'], Next: 'Notify', ResultPath: '$.error' }),
      ]);
    }
  });

  it('runs Backup shards in a bounded Map where one failing shard does not stop the others', () => {
    const map = definitions.backup.States.BackupShards!;
    expect(map.Type).toBe('Map');
    expect(map.MaxConcurrency).toBe(3);
    const inner = (map.ItemProcessor ?? map.Iterator)!;
    for (const name of ['AgentBackup', 'ValidateManifest', 'PruneBackups']) {
      expect(inner.States[name]!.Catch).toEqual([expect.objectContaining({ Next: 'ShardFailed' })]);
    }
  });
});
