import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { RE2JS } from 're2js';
import type { CommandStatusEvent } from '../functions/command-failed.ts';
import { COMMAND_INVOCATION_STATUS_CHANGE } from '../functions/command-statuses.ts';
import { taskError } from './task-error.ts';

/**
 * SSM Run Command on this machine, as the SSM agent runs a Command document (checked against
 * amazon-ssm-agent: docparser, the allowedPattern/minChars/maxChars validators, runscript): the
 * service refuses unknown and missing parameters; the agent checks each value against its
 * allowedPattern with RE2 (Go's regexp), substitutes `{{ name }}` into the runShellScript lines and
 * passes ENV_VAR parameters as `SSM_<name>`, writes the lines to `_script.sh` and runs
 * `sh -c <script>` in its own working directory, killing the process group at the step's
 * timeoutSeconds. Every command ends in a status change, as EventBridge receives it in AWS.
 */

export interface DocumentParameter {
  type: string;
  allowedPattern?: string;
  minChars?: number | string;
  maxChars?: number | string;
  interpolationType?: string;
  default?: unknown;
}

export interface CommandDocumentContent {
  schemaVersion: string;
  parameters?: Record<string, DocumentParameter>;
  mainSteps: {
    action: string;
    name: string;
    inputs: { runCommand: string[]; timeoutSeconds?: string | number };
  }[];
}

/** The fields of an `ssm:sendCommand` task that matter on the host. */
export interface SendCommandInput {
  DocumentName?: string;
  InstanceIds?: string[];
  Parameters?: Record<string, string[]>;
  TimeoutSeconds?: number;
}

export type CommandStatus = 'InProgress' | 'Success' | 'Failed' | 'TimedOut' | 'Cancelled';

/** The SSM agent's default and limits for a step's timeoutSeconds (pluginutil). */
const DEFAULT_EXECUTION_TIMEOUT = 3600;
const MIN_EXECUTION_TIMEOUT = 5;
const MAX_EXECUTION_TIMEOUT = 172_800;
/** GetCommandInvocation returns the first 24,000 characters of each stream. */
const OUTPUT_KEPT = 24_000;

/** The step's timeout as the agent reads it: out of range or unreadable means the default. */
export function executionTimeoutSeconds(value: unknown): number {
  const seconds = typeof value === 'number' ? Math.trunc(value) : Number.parseInt(String(value ?? ''), 10);
  if (!Number.isFinite(seconds) || seconds < MIN_EXECUTION_TIMEOUT || seconds > MAX_EXECUTION_TIMEOUT) {
    return DEFAULT_EXECUTION_TIMEOUT;
  }
  return seconds;
}

/**
 * The agent's parameter checks: allowedPattern compiled by RE2 and matched anywhere in the value
 * (Go's MatchString), then minChars and maxChars. Returns the agent's error, or undefined.
 */
export function parameterError(value: string, parameter: DocumentParameter): string | undefined {
  if (parameter.allowedPattern) {
    let pattern: RE2JS;
    try {
      pattern = RE2JS.compile(parameter.allowedPattern);
    } catch (error) {
      return `encountered error while compiling allowed pattern - internal error: ${(error as Error).message}`;
    }
    if (!pattern.matcher(value).find()) {
      return `parameter value /${value}/ does not match the allowed pattern /${parameter.allowedPattern}/`;
    }
  }
  const min = parameter.minChars === undefined ? undefined : Number(parameter.minChars);
  const max = parameter.maxChars === undefined ? undefined : Number(parameter.maxChars);
  if (min !== undefined && value.length < min) {
    return `parameter value /${value}/ is less than the min char limit /${min}/`;
  }
  if (max !== undefined && value.length > max) {
    return `parameter value /${value}/ is greater than the max char limit /${max}/`;
  }
  return undefined;
}

/** `{{ name }}` replaced by the value, as the agent's ReplaceParameter does (`$$` becomes `$`). */
export function substituteParameters(line: string, values: Record<string, string>): string {
  let result = line;
  for (const [name, value] of Object.entries(values)) {
    const text = value.replaceAll('$$', '$');
    result = result.replace(new RegExp(`{{\\s*${name}\\s*}}`, 'g'), () => text);
  }
  return result;
}

/** One command on one instance, as GetCommandInvocation shows it. */
export interface CommandInvocation {
  commandId: string;
  instanceId: string;
  documentName: string;
  parameters: Record<string, string[]>;
  status: CommandStatus;
  stdout: string;
  stderr: string;
}

/** A command running on this machine. */
export interface RunningCommand {
  commandId: string;
  /** The local callback channel (the agent's fd 3); undefined when the script never ran. */
  callbacks: Readable | undefined;
  /** Settles with the final status once the script has exited. */
  done: Promise<CommandStatus>;
  /** Stops the script (Cancelled), as CancelCommand does. */
  cancel(): void;
}

export interface LocalRunCommandOptions {
  /** The documents by name (as the state machines name them). */
  documents: Record<string, CommandDocumentContent>;
  /** The SSM agent's own environment; the script inherits it. */
  env: NodeJS.ProcessEnv;
  region: string;
  /** Receives each command's final status, as the EventBridge rule would. */
  onStatusChange: (event: CommandStatusEvent) => void;
  /** The working directory the agent runs scripts in. Default "/" (the agent's, under systemd). */
  workingDirectory?: string;
  /** Where the agent writes `_script.sh` (its orchestration directory); each command's is removed at its end. */
  orchestrationRoot: string;
  /** The fd the script inherits for the local callback channel. */
  callbackFd?: number;
}

/** Run Command and the SSM agent on this machine. */
export class LocalRunCommand {
  readonly #options: LocalRunCommandOptions;
  readonly #invocations = new Map<string, CommandInvocation>();

  constructor(options: LocalRunCommandOptions) {
    this.#options = options;
    for (const [name, document] of Object.entries(options.documents)) {
      for (const step of document.mainSteps) {
        if (step.action !== 'aws:runShellScript') {
          throw new Error(
            `document ${name}: step ${step.name} is ${step.action}; only aws:runShellScript runs locally`,
          );
        }
      }
    }
  }

  /** ListCommands' Parameters of a command. */
  async commandParameters(commandId: string): Promise<Record<string, string[]> | undefined> {
    const invocation = [...this.#invocations.values()].find((i) => i.commandId === commandId);
    return invocation?.parameters;
  }

  /** GetCommandInvocation's output of a command on an instance. */
  async invocationOutput(commandId: string, instanceId: string) {
    const invocation = this.#invocations.get(`${commandId}/${instanceId}`);
    if (!invocation)
      throw taskError('InvocationDoesNotExist', `no invocation of ${commandId} on ${instanceId}`);
    return { stdout: invocation.stdout, stderr: invocation.stderr, details: invocation.status };
  }

  /**
   * SendCommand to one instance. Throws as the service would (`Ssm.InvalidDocument`,
   * `Ssm.InvalidParametersException`); everything after that ends in a status change.
   */
  async send(input: SendCommandInput): Promise<RunningCommand> {
    const documentName = input.DocumentName ?? '';
    const document = this.#options.documents[documentName];
    if (!document) throw taskError('Ssm.InvalidDocumentException', `document ${documentName} does not exist`);
    const instanceIds = input.InstanceIds ?? [];
    if (instanceIds.length !== 1) {
      throw taskError(
        'Ssm.InvalidInstanceIdException',
        `the local runner sends to one instance, got ${instanceIds.length}`,
      );
    }
    const instanceId = instanceIds[0]!;
    const declared = document.parameters ?? {};
    const given = input.Parameters ?? {};
    const values: Record<string, string> = {};
    for (const [name, list] of Object.entries(given)) {
      if (!declared[name])
        throw taskError(
          'Ssm.InvalidParametersException',
          `document ${documentName} has no parameter ${name}`,
        );
      if (!Array.isArray(list) || list.length !== 1 || typeof list[0] !== 'string') {
        throw taskError('Ssm.InvalidParametersException', `parameter ${name} must be one string`);
      }
      values[name] = list[0];
    }
    for (const [name, parameter] of Object.entries(declared)) {
      if (values[name] !== undefined) continue;
      if (parameter.default === undefined) {
        throw taskError(
          'Ssm.InvalidParametersException',
          `parameter ${name} of document ${documentName} is required`,
        );
      }
      values[name] = String(parameter.default);
    }

    const commandId = randomUUID();
    const invocation: CommandInvocation = {
      commandId,
      instanceId,
      documentName,
      parameters: Object.fromEntries(Object.entries(values).map(([name, value]) => [name, [value]])),
      status: 'InProgress',
      stdout: '',
      stderr: '',
    };
    this.#invocations.set(`${commandId}/${instanceId}`, invocation);
    const finish = (status: CommandStatus) => {
      invocation.status = status;
      this.#options.onStatusChange({
        source: 'aws.ssm',
        'detail-type': COMMAND_INVOCATION_STATUS_CHANGE,
        detail: { 'command-id': commandId, 'instance-id': instanceId, 'document-name': documentName, status },
      });
      return status;
    };

    // The agent: parameters checked before anything runs.
    for (const [name, parameter] of Object.entries(declared)) {
      const error = parameterError(values[name]!, parameter);
      if (error) {
        invocation.stderr = `${error}\n`;
        return { commandId, callbacks: undefined, done: Promise.resolve(finish('Failed')), cancel: () => {} };
      }
    }
    const environment: Record<string, string> = { SSM_COMMAND_ID: commandId };
    const inline: Record<string, string> = {};
    for (const [name, parameter] of Object.entries(declared)) {
      if (parameter.interpolationType === 'ENV_VAR') environment[`SSM_${name}`] = values[name]!;
      else inline[name] = values[name]!;
    }
    const [step, ...more] = document.mainSteps;
    if (!step || more.length > 0) {
      throw taskError(
        'Ssm.InvalidDocumentException',
        `document ${documentName}: the local runner runs exactly one step`,
      );
    }
    for (const line of step.inputs.runCommand) {
      for (const name of Object.keys(declared)) {
        if (declared[name]!.interpolationType === 'ENV_VAR' && new RegExp(`{{\\s*${name}\\s*}}`).test(line)) {
          // How the agent fills {{ }} for ENV_VAR parameters is not modelled: keep them out of the script.
          throw new Error(
            `document ${documentName} uses ENV_VAR parameter ${name} as {{ ${name} }}: read $SSM_${name}`,
          );
        }
      }
    }
    const lines = step.inputs.runCommand.map((line) => substituteParameters(line, inline));
    const root = this.#options.orchestrationRoot;
    const orchestration = path.join(root, commandId, step.name);
    await fs.mkdir(orchestration, { recursive: true, mode: 0o700 });
    const script = path.join(orchestration, '_script.sh');
    await fs.writeFile(script, `${lines.join('\n')}\n`, { mode: 0o700 });

    const callbackFd = this.#options.callbackFd;
    const child = spawn('sh', ['-c', script], {
      cwd: this.#options.workingDirectory ?? '/',
      env: {
        ...this.#options.env,
        ...environment,
        AWS_SSM_INSTANCE_ID: instanceId,
        AWS_SSM_REGION_NAME: this.#options.region,
        ...(callbackFd ? { STEPBACK_CALLBACK_FD: String(callbackFd) } : {}),
      },
      // Its own process group, so a timeout kills everything the script started.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', ...(callbackFd ? ['pipe' as const] : [])],
    });
    const keep = (stream: 'stdout' | 'stderr') => (data: Buffer) => {
      if (invocation[stream].length < OUTPUT_KEPT) {
        invocation[stream] = (invocation[stream] + data.toString()).slice(0, OUTPUT_KEPT);
      }
    };
    child.stdout?.on('data', keep('stdout'));
    child.stderr?.on('data', keep('stderr'));
    let ending: CommandStatus | undefined;
    const stop = (status: CommandStatus) => {
      ending ??= status;
      killGroup(child);
    };
    const timeout = setTimeout(
      () => stop('TimedOut'),
      executionTimeoutSeconds(step.inputs.timeoutSeconds) * 1000,
    );
    const done = new Promise<CommandStatus>((resolve) => {
      child.once('error', (error) => {
        invocation.stderr += `failed to run commands: ${error.message}\n`;
        ending ??= 'Failed';
      });
      child.once('close', (code) => {
        clearTimeout(timeout);
        // The agent keeps its orchestration directories a while; here nothing is left behind.
        void fs
          .rm(path.join(root, commandId), { recursive: true, force: true })
          .finally(() => resolve(finish(ending ?? (code === 0 ? 'Success' : 'Failed'))));
      });
    });
    return {
      commandId,
      callbacks: callbackFd ? (child.stdio[callbackFd] as Readable) : undefined,
      done,
      cancel: () => stop('Cancelled'),
    };
  }
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}
