import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { Construct } from 'constructs';
import type { FunctionName } from '../functions.ts';

/** What every state machine is built from. */
export interface MachineParts {
  readonly functions: Record<FunctionName, lambda.IFunction>;
  readonly documentName: string;
  readonly documentArn: string;
  readonly topic: sns.ITopic;
  /** The agent's output (stdout/stderr of each run) goes to this log group. */
  readonly agentLogGroup: logs.ILogGroup;
  readonly heartbeatSeconds: number;
  readonly timeoutHours: number;
  readonly logKey: kms.IKey;
  /** SendCommand may only reach instances with this tag (the DB hosts). */
  readonly hostTag: { readonly key: string; readonly value: string };
}

/**
 * SendCommand's TimeoutSeconds: a command the host's SSM agent has not picked up by then ends
 * DeliveryTimedOut, which the failure path reports. Shorter than the heartbeat timeout, so an
 * offline host fails with that status rather than a bare heartbeat timeout (SSM's minimum is 30).
 */
export function commandDeliveryTimeoutSeconds(heartbeatSeconds: number): number {
  return Math.max(30, heartbeatSeconds - 60);
}

/** AWS throttling and transient errors, retried with backoff wherever they can occur. */
const THROTTLED_LAMBDA = ['Lambda.TooManyRequestsException'];
const THROTTLED_SSM = ['Ssm.ThrottlingException', 'Ssm.InternalServerErrorException'];

/** Caught errors land here: `{ Error, Cause }`. */
export const ERROR_PATH = '$.error';

/** A Lambda task whose output is the function's return value (no invoke envelope). */
export function invoke(
  scope: Construct,
  id: string,
  fn: lambda.IFunction,
  payload: Record<string, unknown>,
  /** Where the result goes; undefined replaces the state (an explicit "$" trips the local runner). */
  resultPath: string | undefined,
): tasks.LambdaInvoke {
  const task = new tasks.LambdaInvoke(scope, id, {
    lambdaFunction: fn,
    payload: sfn.TaskInput.fromObject(payload),
    payloadResponseOnly: true,
    retryOnServiceExceptions: true,
    ...(resultPath === undefined ? {} : { resultPath }),
  });
  task.addRetry({
    errors: THROTTLED_LAMBDA,
    interval: Duration.seconds(2),
    backoffRate: 2,
    maxAttempts: 6,
    jitterStrategy: sfn.JitterType.FULL,
  });
  return task;
}

/**
 * The first state of every machine: the validate-input Lambda checks the execution input against
 * `machine`'s schema and replaces the state with the normalised input.
 */
export function validateInput(scope: Construct, parts: MachineParts, machine: string): tasks.LambdaInvoke {
  return invoke(
    scope,
    'ValidateInput',
    parts.functions['validate-input'],
    { machine, input: sfn.JsonPath.entirePayload },
    undefined,
  );
}

/**
 * The end of a machine that works item by item (shards, drills): succeed with `$.summary` when every
 * item did, else fail with the summary's error and cause, which name each failed item.
 */
export function endWithSummary(
  scope: Construct,
  ids: { succeeded: string; failed: string; choice: string },
  failure: sfn.IChainable,
): sfn.Choice {
  const succeeded = new sfn.Succeed(scope, ids.succeeded, { outputPath: '$.summary' });
  const failed = new sfn.Pass(scope, ids.failed, {
    parameters: {
      Error: sfn.JsonPath.stringAt('$.summary.error'),
      Cause: sfn.JsonPath.stringAt('$.summary.cause'),
    },
    resultPath: ERROR_PATH,
  });
  return new sfn.Choice(scope, ids.choice)
    .when(sfn.Condition.booleanEquals('$.summary.ok', true), succeeded)
    .otherwise(failed.next(failure));
}

export interface AgentTaskOptions {
  /** JSONPath of the host (EC2 instance id). */
  readonly hostPath: string;
  /** A JSONPath (`$.request`) or an intrinsic function token giving the request object. */
  readonly request: string;
  readonly resultPath: string;
}

/**
 * Runs the agent on a host through SSM and waits for its SendTask* callback. The request travels
 * base64-encoded; the agent beats every 30 s, so HeartbeatSeconds catches a host that died.
 */
export function agentTask(
  scope: Construct,
  id: string,
  parts: MachineParts,
  options: AgentTaskOptions,
): sfn.TaskStateBase {
  const request = options.request.startsWith('$') ? sfn.JsonPath.objectAt(options.request) : options.request;
  const task = new tasks.CallAwsService(scope, id, {
    service: 'ssm',
    action: 'sendCommand',
    integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
    parameters: {
      DocumentName: parts.documentName,
      InstanceIds: sfn.JsonPath.array(sfn.JsonPath.stringAt(options.hostPath)),
      Parameters: {
        request: sfn.JsonPath.array(sfn.JsonPath.base64Encode(sfn.JsonPath.jsonToString(request))),
        // CDK does not add the token for CallAwsService: pass it.
        taskToken: sfn.JsonPath.array(sfn.JsonPath.taskToken),
      },
      CloudWatchOutputConfig: {
        CloudWatchOutputEnabled: true,
        CloudWatchLogGroupName: parts.agentLogGroup.logGroupName,
      },
      // Delivery only: a host that never picks the command up fails through the failure path.
      TimeoutSeconds: commandDeliveryTimeoutSeconds(parts.heartbeatSeconds),
    },
    iamResources: [parts.documentArn],
    additionalIamStatements: [
      new iam.PolicyStatement({
        actions: ['ssm:SendCommand'],
        resources: [`arn:${Aws.PARTITION}:ec2:${Aws.REGION}:${Aws.ACCOUNT_ID}:instance/*`],
        conditions: { StringEquals: { [`ssm:resourceTag/${parts.hostTag.key}`]: parts.hostTag.value } },
      }),
    ],
    heartbeatTimeout: sfn.Timeout.duration(Duration.seconds(parts.heartbeatSeconds)),
    taskTimeout: sfn.Timeout.duration(Duration.hours(parts.timeoutHours)),
    resultPath: options.resultPath,
  });
  // Another stepback operation holds the instance: wait for it rather than fail.
  task.addRetry({ errors: ['INSTANCE_BUSY'], interval: Duration.minutes(1), backoffRate: 2, maxAttempts: 5 });
  task.addRetry({
    errors: THROTTLED_SSM,
    interval: Duration.seconds(2),
    backoffRate: 2,
    maxAttempts: 6,
    jitterStrategy: sfn.JitterType.FULL,
  });
  return task;
}

/**
 * The failure path shared by every machine: compose the notice from the caught error, publish it,
 * fail the execution with the original error code and its message.
 */
export function notifyAndFail(scope: Construct, machine: string, parts: MachineParts): sfn.IChainable {
  const notify = invoke(
    scope,
    'Notify',
    parts.functions.notify,
    { machine, execution: sfn.JsonPath.executionId, error: sfn.JsonPath.objectAt(ERROR_PATH) },
    '$.notice',
  );
  const publish = new tasks.SnsPublish(scope, 'PublishNotice', {
    topic: parts.topic,
    subject: sfn.JsonPath.stringAt('$.notice.subject'),
    message: sfn.TaskInput.fromJsonPathAt('$.notice.message'),
    resultPath: sfn.JsonPath.DISCARD,
  });
  const fail = new sfn.Fail(scope, 'Failed', {
    errorPath: '$.notice.error',
    causePath: '$.notice.cause',
  });
  // A notice that cannot be composed or sent must not hide the failure itself.
  const failUnnotified = new sfn.Fail(scope, 'FailedWithoutNotice', {
    errorPath: `${ERROR_PATH}.Error`,
    causePath: `${ERROR_PATH}.Cause`,
  });
  notify.addCatch(failUnnotified, { resultPath: '$.noticeError' });
  publish.addCatch(fail, { resultPath: '$.noticeError' });
  return notify.next(publish).next(fail);
}

export interface MachineProps {
  readonly definition: sfn.IChainable;
  readonly logKey: kms.IKey;
  readonly comment: string;
}

/** A Standard state machine with every event logged and X-Ray tracing. */
export function standardMachine(scope: Construct, id: string, props: MachineProps): sfn.StateMachine {
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
    // The vendedlogs prefix keeps CloudWatch's resource policy from growing per machine.
    logGroupName: `/aws/vendedlogs/states/${Aws.STACK_NAME}-${scope.node.id}`,
    retention: logs.RetentionDays.THREE_MONTHS,
    encryptionKey: props.logKey,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  return new sfn.StateMachine(scope, id, {
    stateMachineType: sfn.StateMachineType.STANDARD,
    definitionBody: sfn.DefinitionBody.fromChainable(props.definition),
    comment: props.comment,
    tracingEnabled: true,
    logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
  });
}
