import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type StateMachineDefinition as AslDefinition, StateMachine } from 'aws-local-stepfunctions';
import type { Progress } from '../agent/report/reporter.ts';
import { deploymentDefaults, parseEnvironmentConfig } from '../cdk/config.ts';
import type { Logger } from '../core/log.ts';
import type { DeploymentDefaults, FunctionSettings } from '../functions/environment.ts';
import { functionNamed } from '../functions/index.ts';
import { type FunctionContext, invokeFunction } from '../functions/runtime.ts';
import { LocalTasks, runAgentTask } from './agent.ts';
import { type CommandDocumentContent, LocalRunCommand, type SendCommandInput } from './run-command.ts';
import { taskError } from './task-error.ts';
import {
  allStates,
  commandDocuments,
  type EventRoute,
  eventRoutes,
  LOCAL_ACCOUNT,
  LOCAL_REGION,
  localConfigWith,
  type MachineName,
  machineOfArn,
  matchesEventPattern,
  type StateMachineDefinition,
  stateMachineDefinitions,
  synthesizeTemplate,
} from './template.ts';

/** A notice the state machine published (SNS in AWS). */
export interface Notice {
  subject: string;
  message: string;
}

/** What an execution does as it goes: states entered and left, and the agents' progress. */
export type ExecutionEvent =
  | { type: 'entered'; state: string; stateType: string; index?: number }
  | {
      type: 'exited';
      state: string;
      stateType: string;
      index?: number;
      seconds: number;
      output: unknown;
    }
  | { type: 'failed'; state: string; index?: number; error: string; cause: string }
  | { type: 'retried'; state: string; index?: number; attempt: number }
  | { type: 'caught'; state: string; index?: number }
  /** An agent task's progress; `host` is the instance it runs on. */
  | { type: 'progress'; state: string; host: string; progress: Progress };

export interface LocalRunOptions {
  /** Backup storage: a file:// directory or an s3:// URL. */
  storageUrl: string;
  /** The topology store (`file:///abs/dir` or `ssm:/prefix`), for Backup keyspaces and vschema rebuilds. */
  topologyUrl?: string;
  /** Receives each state as it is entered and left, and the agents' progress. */
  onEvent?: (event: ExecutionEvent) => void;
  /** Environment of the agent processes. Default: this process's. */
  env?: NodeJS.ProcessEnv;
  logger: Logger;
  /** Receives what the alarm topic would. */
  onNotice?: (notice: Notice) => void;
  /** Milliseconds between retries of a busy host. Default 1000 (AWS waits minutes). */
  busyRetryMs?: number;
  signal?: AbortSignal;
}

export type ExecutionOutcome =
  | { status: 'SUCCEEDED'; output: unknown }
  | { status: 'FAILED'; error: string; cause: string };

const SEND_COMMAND = 'arn:aws:states:::aws-sdk:ssm:sendCommand.waitForTaskToken';
const SNS_PUBLISH = 'arn:aws:states:::sns:publish';
const START_EXECUTION_SYNC = 'arn:aws:states:::states:startExecution.sync:2';

export interface LocalStateMachinesOptions {
  /** The agent command the document runs (cdk.json `agent.command`); default this project's stepback. */
  agentCommand?: string;
  /** cdk.json `backup.shardsPerExecution`: more targets run in batches of child executions. */
  shardsPerExecution?: number;
}

/**
 * The deployed state machines, run on this machine: Lambdas in-process, agent tasks through the
 * synthesized SSM document as the SSM agent runs it, the command failure path as EventBridge routes
 * it, SNS notices to a callback.
 */
export class LocalStateMachines {
  readonly definitions: Record<MachineName, StateMachineDefinition>;
  readonly documents: Record<string, CommandDocumentContent>;
  readonly #routes: EventRoute[];
  readonly #defaults: DeploymentDefaults;
  readonly #machines = new Map<MachineName, StateMachine>();

  constructor(options: LocalStateMachinesOptions = {}) {
    const config = parseEnvironmentConfig('local', localConfigWith(options));
    const template = synthesizeTemplate(config);
    this.definitions = stateMachineDefinitions(template);
    this.documents = commandDocuments(template) as Record<string, CommandDocumentContent>;
    this.#routes = eventRoutes(template);
    this.#defaults = deploymentDefaults(config);
  }

  #machine(name: MachineName): StateMachine {
    let machine = this.#machines.get(name);
    if (!machine) {
      // Validated once here; each run skips validation.
      // The library's own view of the same JSON (JSON.parse is typed any): no cast of ours.
      const definition: AslDefinition = JSON.parse(JSON.stringify(this.definitions[name]));
      new StateMachine(definition);
      machine = new StateMachine(definition, {
        validationOptions: { noValidate: true },
      });
      this.#machines.set(name, machine);
    }
    return machine;
  }

  /** Local handlers for every Task state of `name`, by state name. */
  handlers(name: MachineName, options: LocalRunOptions, orchestrationRoot: string) {
    const settings: FunctionSettings = {
      storageUrl: options.storageUrl,
      topologyUrl: options.topologyUrl,
      defaults: this.#defaults,
      region: undefined,
      hostsAreDefaultsFiles: true,
    };
    const tasks = new LocalTasks();
    const context: FunctionContext = {
      settings,
      logger: options.logger,
      now: () => new Date(),
      // No CloudWatch here: the metric the alarm would watch is logged.
      publishMetric: (metric) =>
        options.logger.info(`metric ${metric.namespace}/${metric.name} = ${metric.value}`, metric.dimensions),
    };
    const env = options.env ?? process.env;
    const runCommand: LocalRunCommand = new LocalRunCommand({
      documents: this.documents,
      // The document's `#!/usr/bin/env node` finds the Node that runs this.
      env: { ...env, PATH: [path.dirname(process.execPath), env.PATH].filter(Boolean).join(path.delimiter) },
      region: LOCAL_REGION,
      callbackFd: 3,
      orchestrationRoot,
      // EventBridge: each status change to the functions whose rule matches it.
      onStatusChange: (event) => {
        for (const route of this.#routes) {
          if (!matchesEventPattern(route.pattern, event)) continue;
          for (const functionName of route.functions) {
            const definition = functionNamed(functionName);
            if (!definition) continue;
            invokeFunction(definition, event, {
              ...context,
              runCommand: {
                commandParameters: (id) => runCommand.commandParameters(id),
                invocationOutput: (id, instance) => runCommand.invocationOutput(id, instance),
                sendTaskFailure: async (token, error, cause) => tasks.fail(token, error, cause),
              },
            }).catch((error: unknown) =>
              options.logger.error(`${functionName} failed on a command status change`, {
                error: String(error),
              }),
            );
          }
        }
      },
    });
    let taskCount = 0;
    const handlers: Record<string, (input: unknown) => Promise<unknown>> = {};
    for (const [stateName, state] of allStates(this.definitions[name])) {
      if (state.Type !== 'Task') continue;
      const resource = state.Resource ?? '';
      const functionName = /:function:([a-z-]+)$/.exec(resource)?.[1];
      if (functionName) {
        const definition = functionNamed(functionName);
        if (!definition) throw new Error(`state ${stateName} calls ${functionName}, which has no handler`);
        handlers[stateName] = (input) => invokeFunction(definition, input, context);
      } else if (resource === SEND_COMMAND) {
        handlers[stateName] = (input) => {
          const command = input as SendCommandInput;
          const host = command.InstanceIds?.[0] ?? '(none)';
          const onEvent = options.onEvent;
          // Step Functions gives each task a token of its own; the runner's context has one per execution.
          const token = `${command.Parameters?.taskToken?.[0] ?? 'local'}-${++taskCount}`;
          return runAgentTask(
            { ...command, Parameters: { ...command.Parameters, taskToken: [token] } },
            {
              runCommand,
              tasks,
              logger: options.logger,
              heartbeatSeconds: state.HeartbeatSeconds,
              signal: options.signal,
              ...(onEvent
                ? {
                    onProgress: (progress) => onEvent({ type: 'progress', state: stateName, host, progress }),
                  }
                : {}),
            },
          );
        };
      } else if (resource === START_EXECUTION_SYNC) {
        // A child execution run to its end, as .sync:2 waits for it (its Output as JSON).
        handlers[stateName] = async (input) => {
          const { StateMachineArn, Input } = input as { StateMachineArn?: string; Input?: unknown };
          const child = machineOfArn(StateMachineArn ?? '');
          if (!child)
            throw taskError('States.TaskFailed', `${StateMachineArn} is not a machine of this stack`);
          const outcome = await this.run(child, Input, options);
          if (outcome.status === 'FAILED') {
            throw taskError(
              'States.TaskFailed',
              JSON.stringify({ Status: 'FAILED', Error: outcome.error, Cause: outcome.cause }),
            );
          }
          return { Status: 'SUCCEEDED', StateMachineArn, Output: outcome.output };
        };
      } else if (resource === SNS_PUBLISH) {
        handlers[stateName] = async (input) => {
          const { Subject, Message } = input as { Subject?: string; Message?: unknown };
          const notice = {
            subject: Subject ?? '',
            message: typeof Message === 'string' ? Message : JSON.stringify(Message),
          };
          options.logger.warn(`notice: ${notice.subject}`);
          options.onNotice?.(notice);
          return { MessageId: randomUUID() };
        };
      } else {
        handlers[stateName] = async () => {
          throw taskError('States.TaskFailed', `state ${stateName}: ${resource} has no local stand-in`);
        };
      }
    }
    return handlers;
  }

  /** Runs one execution to its end. */
  async run(name: MachineName, input: unknown, options: LocalRunOptions): Promise<ExecutionOutcome> {
    const retryIntervalOverrides: Record<string, number> = {};
    for (const [stateName, state] of allStates(this.definitions[name])) {
      if (state.Resource === SEND_COMMAND) retryIntervalOverrides[stateName] = options.busyRetryMs ?? 1000;
    }
    const executionName = randomUUID();
    // Where the SSM agent writes the scripts of this execution's commands; removed at its end.
    const orchestrationRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'stepback-ssm-'));
    // State data is JSON in Step Functions: the input and every task result go through JSON here too
    // (JSON.parse is typed any, so the library's JSON types need no cast of ours).
    const asJson = (value: unknown) => JSON.parse(JSON.stringify(value ?? null));
    const handlers = Object.fromEntries(
      Object.entries(this.handlers(name, options, orchestrationRoot)).map(([state, handler]) => [
        state,
        async (data: unknown) => asJson(await handler(data)),
      ]),
    );
    const json: Parameters<StateMachine['run']>[0] = asJson(input);
    const execution = this.#machine(name).run(json, {
      overrides: { taskResourceLocalHandlers: handlers, retryIntervalOverrides },
      context: {
        Execution: {
          Id: `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:execution:${name}:${executionName}`,
          Name: executionName,
        },
        Task: { Token: `local-${executionName}` },
      },
    });
    const onAbort = () => execution.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    // The log ends when the execution does: the last states are reported before the outcome.
    const forwarded = options.onEvent
      ? forwardEvents(execution.eventLogs, options.onEvent).catch((error: unknown) =>
          options.logger.warn('execution events stopped', { error: String(error) }),
        )
      : Promise.resolve();
    try {
      return { status: 'SUCCEEDED', output: await execution.result };
    } catch (error) {
      const failure = error instanceof Error && error.cause instanceof Error ? error.cause : error;
      if (failure instanceof Error) return { status: 'FAILED', error: failure.name, cause: failure.message };
      return { status: 'FAILED', error: 'States.Runtime', cause: String(failure) };
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      await forwarded;
      await fs.rm(orchestrationRoot, { recursive: true, force: true });
    }
  }
}

/** The runner's event log entries (its type is not exported). */
type EventLog = ReturnType<StateMachine['run']>['eventLogs'] extends AsyncGenerator<infer E> ? E : never;

/** Turns the runner's event log into ExecutionEvents, timing each state from entry to exit. */
async function forwardEvents(
  events: AsyncGenerator<EventLog>,
  onEvent: (event: ExecutionEvent) => void,
): Promise<void> {
  const entered = new Map<string, number>();
  const key = (state: string, index: number | undefined) => `${state}#${index ?? ''}`;
  for await (const event of events) {
    switch (event.type) {
      case 'StateEntered':
        entered.set(key(event.state.name, event.index), event.timestamp);
        onEvent({
          type: 'entered',
          state: event.state.name,
          stateType: event.state.type,
          index: event.index,
        });
        break;
      case 'StateExited': {
        const start = entered.get(key(event.state.name, event.index)) ?? event.timestamp;
        onEvent({
          type: 'exited',
          state: event.state.name,
          stateType: event.state.type,
          index: event.index,
          seconds: (event.timestamp - start) / 1000,
          output: event.state.output,
        });
        break;
      }
      case 'StateFailed':
        onEvent({
          type: 'failed',
          state: event.state.name,
          index: event.index,
          error: event.Error,
          cause: typeof event.Cause === 'string' ? event.Cause : JSON.stringify(event.Cause),
        });
        break;
      case 'StateRetried':
        onEvent({
          type: 'retried',
          state: event.state.name,
          index: event.index,
          attempt: event.retry.attempt,
        });
        break;
      case 'StateCaught':
        onEvent({ type: 'caught', state: event.state.name, index: event.index });
        break;
      default:
        break;
    }
  }
}
