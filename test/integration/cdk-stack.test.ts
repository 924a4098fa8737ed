import { createRequire } from 'node:module';
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { StateMachine as LocalStepFunction } from 'aws-local-stepfunctions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { RE2JS } from 're2js';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseEnvironmentConfig } from '../../cdk/config.ts';
import { ACKNOWLEDGMENTS } from '../../cdk/nag.ts';
import { StepbackStack } from '../../cdk/stack.ts';
import {
  encodeAgentRequest,
  REQUEST_B64_PATTERN,
  SSM_PARAMETER_MAX_CHARS,
  TASK_TOKEN_PATTERN,
} from '../../core/agent-request.ts';
import {
  allStates,
  type CloudFormationTemplate,
  type MachineName,
  type StateMachineDefinition,
  stateMachineDefinitions,
} from '../../local/template.ts';
import { tempDir } from '../support/root.ts';

/** Each state machine's role statements, by the machine's logical id. */
function machineRolePolicies(): [string, any[]][] {
  const policies = template.findResources('AWS::IAM::Policy') as Record<string, any>;
  return Object.entries(policies)
    .filter(([id]) => /^(Backup|Restore|Reshard|Drill)StateMachineRoleDefaultPolicy/.test(id))
    .map(([id, policy]) => [id, policy.Properties.PolicyDocument.Statement]);
}

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
  binlogArchive: {},
  alarms: { email: 'dba@example.com' },
  topology: 'ssm:/stepback/dev',
  agent: { systemdService: 'mariadb.service' },
  drill: { host: 'i-0dddddddddddddddd', defaultsFile: '/etc/mysql/drill.cnf' },
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
    const [document] = Object.values(documents) as {
      Properties: { Content: Record<string, any>; UpdateMethod?: string };
    }[];
    const content = document!.Properties.Content;
    expect(Object.keys(content.parameters)).toEqual(['request', 'taskToken']);
    expect(content.parameters.request).toMatchObject({
      allowedPattern: REQUEST_B64_PATTERN,
      maxChars: SSM_PARAMETER_MAX_CHARS.request,
      interpolationType: 'ENV_VAR',
    });
    expect(content.parameters.taskToken).toMatchObject({
      allowedPattern: TASK_TOKEN_PATTERN,
      maxChars: SSM_PARAMETER_MAX_CHARS.taskToken,
      interpolationType: 'ENV_VAR',
    });
    // A new version of the same document would not become the default SendCommand runs.
    expect(document!.Properties.UpdateMethod ?? 'Replace').toBe('Replace');
  });

  it('compiles every allowedPattern with RE2, as the SSM agent does, and matches real parameters', () => {
    const [document] = Object.values(template.findResources('AWS::SSM::Document')) as any[];
    const parameters = document.Properties.Content.parameters as Record<string, { allowedPattern: string }>;
    const matches = (name: string, value: string) =>
      RE2JS.compile(parameters[name]!.allowedPattern).matcher(value).find();
    const request = encodeAgentRequest({
      operation: 'backup',
      storage: 's3://bucket/backups',
      dir: 'commerce/-80',
      defaultsFile: '/etc/mysql/my.cnf',
    });
    expect(matches('request', request)).toBe(true);
    expect(matches('request', "e30=' ; reboot")).toBe(false);
    const token = 'AQCEAAAAKgAAAAMAAAAAAAAAAcO5d+1pZ1Gxs/Vh3tR7Ux8==';
    expect(matches('taskToken', token)).toBe(true);
    expect(matches('taskToken', 'x y')).toBe(false);
    // The patterns before: RE2 refuses a repeat count over 1000, so the agent failed every command.
    expect(() => RE2JS.compile('^[A-Za-z0-9+/]{2,65536}={0,2}$')).toThrow(/invalid repeat count/);
    expect(() => RE2JS.compile('^[A-Za-z0-9+/=_.:-]{1,2048}$')).toThrow(/invalid repeat count/);
  });

  it('keeps the request and the token off the command line and out of the script', () => {
    const [document] = Object.values(template.findResources('AWS::SSM::Document')) as any[];
    const step = document.Properties.Content.mainSteps[0];
    const script = (step.inputs.runCommand as unknown[]).map((line) => JSON.stringify(line)).join('\n');
    expect(script).not.toContain('{{');
    expect(script).toContain('${SSM_request:?');
    expect(script).toContain('${SSM_taskToken:?');
    expect(script).toMatch(/exec '\/usr\/local\/bin\/stepback' run"$/);
    // As long as the task may wait, within aws:runShellScript's 48 hours.
    expect(step.inputs.timeoutSeconds).toBe(String(24 * 3600));
  });

  it('deploys every function on Node 22, traced, with the storage URL and deployment defaults', () => {
    const functions = template.findResources('AWS::Lambda::Function');
    const names = Object.values(functions).map(
      (f: any) => f.Properties.Environment.Variables.STEPBACK_FUNCTION,
    );
    expect(names.sort()).toEqual([
      'choose-backup',
      'command-failed',
      'drill-age',
      'list-backups',
      'notify',
      'plan-drills',
      'prune-backups',
      'rebuild-vschema',
      'resolve-targets',
      'summarize-shards',
      'switch-topology',
      'validate-input',
      'validate-manifest',
    ]);
    for (const fn of Object.values(functions) as any[]) {
      expect(fn.Properties.Runtime).toBe('nodejs22.x');
      expect(fn.Properties.TracingConfig).toEqual({ Mode: 'Active' });
      const defaults = JSON.parse(fn.Properties.Environment.Variables.STEPBACK_DEFAULTS);
      expect(defaults.retention).toEqual({ keepCount: 3, keepDays: 7 });
      // Requests name this unit when neither the input nor the topology names one.
      expect(defaults.systemdService).toBe('mariadb.service');
    }
  });

  it('has six Standard state machines (five to start, one for Backup batches), every event logged, X-Ray tracing', () => {
    template.resourceCountIs('AWS::StepFunctions::StateMachine', 6);
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

  it('schedules the BinlogArchive state machine every 5 minutes on the backup targets', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      Targets: [
        Match.objectLike({
          Arn: { Ref: Match.stringLikeRegexp('^BinlogArchiveStateMachine') },
          Input: JSON.stringify({
            targets: [{ keyspace: 'commerce', shard: '0', host: 'i-0123456789abcdef0' }],
            maxAge: '5m',
          }),
        }),
      ],
    });
  });

  it('alarms on failed, timed-out and aborted executions of each machine to the SNS topic', () => {
    for (const metric of ['ExecutionsFailed', 'ExecutionsTimedOut', 'ExecutionsAborted']) {
      expect(
        Object.keys(template.findResources('AWS::CloudWatch::Alarm', { Properties: { MetricName: metric } })),
      ).toHaveLength(5);
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
        'logs:CreateLogGroup',
        'logs:CreateLogStream',
        'logs:DescribeLogGroups',
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
    // The callbacks reach this stack's machines that run agent tasks, nothing else.
    const callbacks = statements.find((s) => s.Sid === 'TaskCallbacks');
    expect(callbacks.Resource).toHaveLength(6);
    for (const resource of callbacks.Resource)
      expect(resource).toEqual({ Ref: expect.stringMatching(/StateMachine/) });
    // Run Command output reaches CloudWatch: the agent describes the groups, then writes to its own.
    const output = statements.find((s) => s.Sid === 'AgentOutput');
    expect(output.Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^AgentLogs/), 'Arn'] });
    expect(statements.find((s) => s.Sid === 'AgentOutputGroup').Action).toBe('logs:DescribeLogGroups');
  });

  it('lets the state machines publish to the topic the stack key encrypts', () => {
    const [topic] = Object.values(template.findResources('AWS::SNS::Topic')) as any[];
    const key = topic.Properties.KmsMasterKeyId;
    for (const [, role] of machineRolePolicies()) {
      const kms = role.filter((s: any) => JSON.stringify(s.Resource) === JSON.stringify(key));
      expect(kms.flatMap((s: any) => [s.Action].flat()).sort()).toEqual([
        'kms:Decrypt',
        'kms:GenerateDataKey*',
      ]);
    }
  });

  it('sends the agent document only to instances with the host tag', () => {
    for (const [name, statements] of machineRolePolicies()) {
      const sends = statements.filter((s: any) => [s.Action].flat().includes('ssm:SendCommand'));
      const onInstances = sends.filter((s: any) => JSON.stringify(s.Resource).includes(':instance/'));
      expect(onInstances.length, name).toBeGreaterThan(0);
      for (const statement of onInstances) {
        expect(statement.Condition, name).toEqual({
          StringEquals: { 'ssm:resourceTag/stepback:db-host': 'true' },
        });
      }
    }
  });

  it('acknowledges wildcard resources on the resources that need them, not stack-wide', () => {
    // Stack-wide: only findings that name no resource.
    expect(ACKNOWLEDGMENTS.map((a) => a.id).filter((id) => id.includes('Resource::'))).toEqual([]);
  });
});

describe('the failure path of agent commands', () => {
  it('sends failed invocations of the agent document to the command-failed function', () => {
    const rules = Object.values(template.findResources('AWS::Events::Rule')) as any[];
    const rule = rules.find((r) => r.Properties.EventPattern)!;
    const [document] = Object.keys(template.findResources('AWS::SSM::Document'));
    expect(rule.Properties.EventPattern).toEqual({
      source: ['aws.ssm'],
      'detail-type': ['EC2 Command Invocation Status-change Notification'],
      detail: {
        'document-name': [{ Ref: document }],
        status: expect.arrayContaining(['Failed', 'TimedOut', 'Cancelled', 'Undeliverable']),
      },
    });
    const [target] = rule.Properties.Targets;
    const functions = template.findResources('AWS::Lambda::Function') as Record<string, any>;
    const [logicalId] = target.Arn['Fn::GetAtt'];
    expect(functions[logicalId].Properties.Environment.Variables.STEPBACK_FUNCTION).toBe('command-failed');
    expect(target.DeadLetterConfig).toEqual({
      Arn: { 'Fn::GetAtt': [expect.stringMatching(/^UndeliveredEvents/), 'Arn'] },
    });
  });

  it('lets that function read commands and fail tasks of this stack’s machines only', () => {
    const policies = Object.values(template.findResources('AWS::IAM::Policy')) as any[];
    const statements = policies.flatMap((p) => p.Properties.PolicyDocument.Statement as any[]);
    expect(statements.find((s) => s.Sid === 'ReadCommands').Action.sort()).toEqual([
      'ssm:GetCommandInvocation',
      'ssm:ListCommands',
    ]);
    const fail = statements.find((s) => s.Sid === 'FailAgentTasks');
    expect(fail.Action).toBe('states:SendTaskFailure');
    expect(fail.Resource).toHaveLength(6);
  });

  it('gives SendCommand a delivery timeout shorter than the heartbeat timeout', () => {
    for (const definition of Object.values(definitions)) {
      for (const [, state] of allStates(definition)) {
        if (state.Resource !== 'arn:aws:states:::aws-sdk:ssm:sendCommand.waitForTaskToken') continue;
        expect((state.Parameters as any).TimeoutSeconds).toBe(240);
        expect(state.HeartbeatSeconds).toBe(300);
      }
    }
  });
});

describe('the alarms', () => {
  it('fire when no Backup execution succeeded in 26 hours, counting hours without data', () => {
    const alarms = template.findResources('AWS::CloudWatch::Alarm', {
      Properties: { MetricName: 'ExecutionsSucceeded' },
    });
    const [alarm] = Object.values(alarms) as any[];
    expect(Object.keys(alarms)).toHaveLength(1);
    expect(alarm.Properties).toMatchObject({
      Period: 3600,
      EvaluationPeriods: 26,
      DatapointsToAlarm: 26,
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'breaching',
      Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: expect.stringMatching(/^BackupStateMachine/) } }],
    });
  });

  it('fire when EventBridge leaves an event in the dead-letter queue the schedule delivers through', () => {
    const schedule = (Object.values(template.findResources('AWS::Events::Rule')) as any[]).find(
      (r) => r.Properties.ScheduleExpression,
    );
    const dlq = schedule.Properties.Targets[0].DeadLetterConfig.Arn['Fn::GetAtt'][0];
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlq, 'QueueName'] } }],
    });
  });
});

describe('the topology store', () => {
  it('is read by resolve-targets and plan-drills and written by rebuild-vschema and switch-topology, under its prefix only', () => {
    const policies = Object.values(template.findResources('AWS::IAM::Policy')) as any[];
    const statements = policies.flatMap((p) => p.Properties.PolicyDocument.Statement as any[]);
    const topology = statements.filter((s) =>
      [s.Action].flat().some((a: string) => /^ssm:.*Parameter/.test(a)),
    );
    expect(topology.map((s) => [s.Sid, [s.Action].flat().sort()]).sort()).toEqual([
      ['TopologyRead', ['ssm:GetParameter', 'ssm:GetParametersByPath']],
      ['TopologyRead', ['ssm:GetParameter', 'ssm:GetParametersByPath']],
      [
        'TopologyReadWrite',
        ['ssm:DeleteParameters', 'ssm:GetParameter', 'ssm:GetParametersByPath', 'ssm:PutParameter'],
      ],
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
    expect(states.RestoreDestinations!.Next).toBe('CutOverAfterDiff');
    expect(states.CutOverAfterDiff).toMatchObject({
      Type: 'Choice',
      Choices: [{ Variable: '$.resolved.cutover', IsNull: true, Next: 'AgentStopSourceReplication' }],
      Default: 'AgentFreezeSource',
    });
    expect(states.AgentStopSourceReplication!.Next).toBe('VerifyDestinations');
    expect(states.VerifyDestinations!.Next).toBe('AgentStartSourceReplication');
    expect(states.AgentStartSourceReplication!.Next).toBe('NoCutover');
    expect(states.NoCutover!.Next).toBe('HasTopologyStore');
    // A cutover: freeze, catch up and diff at the final position, switch; any failure before the
    // switch lets writes in again, then fails the execution.
    expect(states.AgentFreezeSource!.Next).toBe('FinalPosition');
    expect(states.FinalPosition!.Next).toBe('VerifyDestinationsAtFreeze');
    expect(states.VerifyDestinationsAtFreeze!.Next).toBe('SwitchTopology');
    expect(states.SwitchTopology!.Next).toBe('CutOver');
    expect(states.CutOver!.Next).toBe('HasTopologyStore');
    for (const name of ['AgentFreezeSource', 'VerifyDestinationsAtFreeze', 'SwitchTopology']) {
      expect(states[name]!.Catch, name).toEqual([expect.objectContaining({ Next: 'AgentUnfreezeSource' })]);
    }
    expect(states.AgentUnfreezeSource!.Next).toBe('Notify');
    // A failure at the consistent point starts the source replica again, then fails the execution.
    expect(states.VerifyDestinations!.Catch).toEqual([
      expect.objectContaining({ Next: 'StartSourceReplicationAfterFailure' }),
    ]);
    expect(states.StartSourceReplicationAfterFailure!.Next).toBe('Notify');
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
      'AgentBackup',
      'AgentBinlogArchive',
      'AgentCatchUp',
      'AgentCatchUpToPoint',
      'AgentCatchUpToPointAtFreeze',
      'AgentDiff',
      'AgentDiffAtFreeze',
      'AgentDrill',
      'AgentFreezeSource',
      'AgentMultirestore',
      'AgentRestore',
      'AgentSnapshot',
      'AgentStartSourceReplication',
      'AgentStopSourceReplication',
      'AgentUnfreezeSource',
      'StartSourceReplicationAfterFailure',
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
        expect.arrayContaining([
          expect.objectContaining({ ErrorEquals: ['INSTANCE_BUSY'] }),
          expect.objectContaining({ ErrorEquals: expect.arrayContaining(['Ssm.ThrottlingException']) }),
        ]),
      );
    }
  });

  it('retry every Lambda on throttling', () => {
    for (const definition of Object.values(definitions)) {
      for (const [name, state] of allStates(definition)) {
        if (!String(state.Resource).includes(':lambda:invoke')) continue;
        expect(JSON.stringify(state.Retry), name).toContain('Lambda.TooManyRequestsException');
      }
    }
  });

  it('start with input validation and end every failure in notify then a Fail with the caught code', () => {
    for (const definition of [definitions.backup, definitions.restore, definitions.reshard]) {
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

  it('runs a Backup of more targets than one batch as child executions, batch after batch', () => {
    const states = definitions.backup.States;
    expect(states.ResolveTargets!.Next).toBe('InBatches');
    expect(states.InBatches).toMatchObject({
      Type: 'Choice',
      Choices: [{ Variable: '$.resolved.batched', BooleanEquals: true, Next: 'BackupBatches' }],
      Default: 'BackupShards',
    });
    const batches = states.BackupBatches!;
    expect(batches).toMatchObject({ Type: 'Map', ItemsPath: '$.resolved.batches', MaxConcurrency: 1 });
    const start = (batches.ItemProcessor ?? batches.Iterator)!.States.BackupBatch!;
    expect(start.Resource).toBe('arn:aws:states:::states:startExecution.sync:2');
    const child = (start.Parameters as any).StateMachineArn as string;
    expect(child).toMatch(/^local-BackupBatchStateMachine/);
    // The child runs the same shard work and summarizes its batch.
    const batch = definitions.backupBatch;
    expect(batch.StartAt).toBe('BackupShards');
    expect(allStates(batch).map(([name]) => name)).toEqual(
      expect.arrayContaining(['AgentBackup', 'ValidateManifest', 'PruneBackups', 'SummarizeBatch']),
    );
    const functions = template.findResources('AWS::Lambda::Function') as Record<string, any>;
    const defaults = JSON.parse(
      Object.values(functions)[0].Properties.Environment.Variables.STEPBACK_DEFAULTS,
    );
    expect(defaults.backup.shardsPerExecution).toBe(400);
  });

  it('runs Backup shards in a bounded Map where one failing shard does not stop the others', () => {
    const map = definitions.backup.States.BackupShards!;
    expect(map.Type).toBe('Map');
    expect(map.MaxConcurrency).toBe(3);
    const inner = (map.ItemProcessor ?? map.Iterator)!;
    for (const name of ['AgentBackup', 'ValidateManifest']) {
      expect(inner.States[name]!.Catch).toEqual([expect.objectContaining({ Next: 'ShardFailed' })]);
    }
  });

  it('keeps a shard backed up when its prune fails, with the failure as a warning', async () => {
    const shardInput = {
      resolved: {
        batched: false,
        targets: [{ keyspace: 'ks', shard: '0', host: 'i-1', dir: 'ks/0', request: {} }],
        batches: [],
        unresolved: [],
      },
    };
    const lambda = (name: string) => (input: any) => {
      switch (name) {
        case 'ValidateInput':
          return { retention: { keepCount: 1, keepDays: 1 } };
        case 'ResolveTargets':
          return shardInput.resolved;
        case 'AgentBackup':
          return { name: 'b1', position: '0-1-1', bytes: { raw: 1, stored: 1 }, seconds: 1 };
        case 'ValidateManifest':
          return { ok: true };
        case 'PruneBackups':
          throw Object.assign(new Error('Access Denied'), { name: 'AccessDenied' });
        case 'SummarizeShards':
          return { ok: true, shards: input.shards };
        default:
          throw new Error(`unexpected state ${name}`);
      }
    };
    const handlers = Object.fromEntries(
      allStates(definitions.backup)
        .filter(([, state]) => state.Type === 'Task')
        .map(([name]) => [name, async (input: unknown) => lambda(name)(input)]),
    );
    const machine = new LocalStepFunction(definitions.backup as never, {
      validationOptions: { noValidate: true },
    });
    const execution = machine.run({ targets: [] } as never, {
      overrides: { taskResourceLocalHandlers: handlers as never },
      context: { Task: { Token: 't' } } as never,
    });
    const output = (await execution.result) as any;
    expect(output.shards).toEqual([
      expect.objectContaining({
        keyspace: 'ks',
        ok: true,
        backup: 'b1',
        removed: [],
        warning: 'pruning failed, old backups are kept: AccessDenied: Access Denied',
      }),
    ]);
  });
});

describe('restore drills', () => {
  it('schedules the Drill state machine weekly by default, on the drill host of the environment', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(0 5 ? * SUN *)',
      Targets: [
        Match.objectLike({
          Arn: { Ref: Match.stringLikeRegexp('^DrillStateMachine') },
          Input: JSON.stringify({
            host: 'i-0dddddddddddddddd',
            defaultsFile: '/etc/mysql/drill.cnf',
            maxAgeDays: 8,
          }),
        }),
      ],
    });
  });

  it('runs plan, drills one at a time, then the drill age, and fails when a drill failed', () => {
    const drill = definitions.drill;
    const states = Object.fromEntries(allStates(drill));
    expect(drill.StartAt).toBe('ValidateInput');
    expect(states.DrillBackups).toMatchObject({ Type: 'Map', MaxConcurrency: 1 });
    // A failing drill is a result of its own, not the end of the run.
    expect(states.AgentDrill?.Catch).toEqual([expect.objectContaining({ Next: 'DrillFailed' })]);
    expect(states.DrillAge?.Next).toBe('AllDrillsPassed');
    expect(JSON.stringify(states.AllDrillsPassed)).toContain('"Next":"Drilled"');
  });

  it('computes the drill age daily and alarms when a shard has no passing drill within the threshold, or no report came', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 day)',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^FunctionsDrillAge'), 'Arn'] },
          Input: JSON.stringify({ maxAgeDays: 8 }),
        }),
      ],
    });
    const alarms = template.findResources('AWS::CloudWatch::Alarm', {
      Properties: { MetricName: 'OverdueDrillShards' },
    });
    const [alarm] = Object.values(alarms) as any[];
    expect(alarm.Properties).toMatchObject({
      Namespace: 'stepback',
      Statistic: 'Maximum',
      Period: 86_400,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'breaching',
      AlarmActions: [{ Ref: expect.stringMatching(/AlarmTopic/) }],
    });
    // The dimension is the storage URL drill-age reports on: the one its environment names.
    const [dimension] = alarm.Properties.Dimensions;
    expect(dimension.Name).toBe('Storage');
    const functions = Object.values(template.findResources('AWS::Lambda::Function')) as any[];
    const drillAge = functions.find(
      (f) => f.Properties.Environment.Variables.STEPBACK_FUNCTION === 'drill-age',
    );
    expect(dimension.Value).toEqual(drillAge.Properties.Environment.Variables.STEPBACK_STORAGE_URL);
  });
});
