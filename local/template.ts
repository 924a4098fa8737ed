import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import {
  type EnvironmentConfig,
  type EnvironmentConfigInput,
  parseEnvironmentConfig,
} from '../cdk/config.ts';
import { StepbackStack } from '../cdk/stack.ts';

/**
 * The state machines exactly as the stack deploys them: synthesized in-process, each definition
 * taken from the template with its CloudFormation intrinsics resolved to local names.
 */

export const LOCAL_ACCOUNT = '000000000000';
export const LOCAL_REGION = 'us-east-1';

/** This project's `stepback` (bin/stepback.js): the agent command of local runs. */
export const localAgentCommand = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'bin',
  'stepback.js',
);

/** The environment the local runner synthesizes: no schedule, this project's agent. */
export const localConfig: EnvironmentConfigInput = {
  account: LOCAL_ACCOUNT,
  region: LOCAL_REGION,
  backup: {},
  retention: { keepCount: 3, keepDays: 7 },
  agent: { command: localAgentCommand },
};

/**
 * The local environment with another agent command (`stepback-local --agent-command PATH`) or
 * batch size.
 */
export function localConfigWith(
  options: { agentCommand?: string; shardsPerExecution?: number } = {},
): EnvironmentConfigInput {
  return {
    ...localConfig,
    backup: {
      ...localConfig.backup,
      ...(options.shardsPerExecution ? { shardsPerExecution: options.shardsPerExecution } : {}),
    },
    agent: { ...localConfig.agent, ...(options.agentCommand ? { command: options.agentCommand } : {}) },
  };
}

/** The machines an operator starts; `backupBatch` runs the batches of a large Backup. */
export type MachineName = 'backup' | 'restore' | 'reshard' | 'drill' | 'backupBatch' | 'binlogArchive';
const logicalIdPrefix: Record<MachineName, string> = {
  backup: 'BackupStateMachine',
  binlogArchive: 'BinlogArchiveStateMachine',
  restore: 'RestoreStateMachine',
  reshard: 'ReshardStateMachine',
  drill: 'DrillStateMachine',
  backupBatch: 'BackupBatchStateMachine',
};

/** The machine a `local-<logicalId>` state machine ARN names. */
export function machineOfArn(arn: string): MachineName | undefined {
  const logicalId = arn.replace(/^local-/, '');
  return (Object.keys(logicalIdPrefix) as MachineName[]).find((machine) =>
    new RegExp(`^${logicalIdPrefix[machine]}[0-9A-F]{8}$`).test(logicalId),
  );
}

export interface CloudFormationTemplate {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

/**
 * Synthesizes the stack without bundling the Lambdas (they run in-process here), into a temporary
 * cloud assembly that is removed once the template is read.
 */
export function synthesizeTemplate(config: EnvironmentConfig = parseEnvironmentConfig('local', localConfig)) {
  const outdir = mkdtempSync(path.join(os.tmpdir(), 'stepback-synth-'));
  try {
    const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new StepbackStack(app, 'Stepback-local', {
      env: { account: config.account, region: config.region },
      environmentName: 'local',
      config,
    });
    return app.synth().getStackByName(stack.stackName).template as CloudFormationTemplate;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** The ARN a Lambda gets locally: its stepback function name, so tasks map back to handlers. */
export function localFunctionArn(name: string): string {
  return `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${name}`;
}

const pseudo: Record<string, string> = {
  'AWS::Region': LOCAL_REGION,
  'AWS::AccountId': LOCAL_ACCOUNT,
  'AWS::Partition': 'aws',
  'AWS::URLSuffix': 'amazonaws.com',
  'AWS::StackName': 'Stepback-local',
};

/** Resolves Fn::Join, Ref and Fn::GetAtt against the template; anything else is an error. */
export function resolveIntrinsics(value: unknown, template: CloudFormationTemplate): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveIntrinsics(item, template));
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value);
  if (entries.length !== 1) {
    return Object.fromEntries(entries.map(([key, item]) => [key, resolveIntrinsics(item, template)]));
  }
  const [[key, argument]] = entries as [[string, unknown]];
  switch (key) {
    case 'Fn::Join': {
      const [separator, parts] = argument as [string, unknown[]];
      return parts.map((part) => String(resolveIntrinsics(part, template))).join(separator);
    }
    case 'Ref': {
      const name = argument as string;
      if (pseudo[name] !== undefined) return pseudo[name];
      const resource = template.Resources[name];
      if (!resource) throw new Error(`Ref to ${name}, which is not in the template`);
      if (resource.Type === 'AWS::SNS::Topic') return `arn:aws:sns:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${name}`;
      return `local-${name}`;
    }
    case 'Fn::GetAtt': {
      const [name, attribute] = argument as [string, string];
      const resource = template.Resources[name];
      if (!resource) throw new Error(`Fn::GetAtt on ${name}, which is not in the template`);
      if (resource.Type === 'AWS::Lambda::Function' && attribute === 'Arn') {
        const variables = (resource.Properties?.Environment as { Variables?: Record<string, string> })
          ?.Variables;
        const functionName = variables?.STEPBACK_FUNCTION;
        if (!functionName) throw new Error(`Lambda ${name} has no STEPBACK_FUNCTION variable`);
        return localFunctionArn(functionName);
      }
      return `arn:aws:local:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${name}/${attribute}`;
    }
    default:
      if (key.startsWith('Fn::')) throw new Error(`${key} is not resolved locally`);
      return { [key]: resolveIntrinsics(argument, template) };
  }
}

/** Each state machine's ASL, intrinsics resolved. */
export function stateMachineDefinitions(
  template: CloudFormationTemplate,
): Record<MachineName, StateMachineDefinition> {
  const result: Partial<Record<MachineName, StateMachineDefinition>> = {};
  for (const [logicalId, resource] of Object.entries(template.Resources)) {
    if (resource.Type !== 'AWS::StepFunctions::StateMachine') continue;
    const machine = (Object.keys(logicalIdPrefix) as MachineName[]).find((m) =>
      logicalId.startsWith(logicalIdPrefix[m]),
    );
    if (!machine) continue;
    const text = resolveIntrinsics(resource.Properties?.DefinitionString, template);
    result[machine] = JSON.parse(String(text)) as StateMachineDefinition;
  }
  for (const machine of Object.keys(logicalIdPrefix) as MachineName[]) {
    if (!result[machine]) throw new Error(`the template has no ${machine} state machine`);
  }
  return result as Record<MachineName, StateMachineDefinition>;
}

/** The SSM documents of the template by the name the state machines send (`local-<logicalId>`). */
export function commandDocuments(template: CloudFormationTemplate): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(template.Resources)
      .filter(([, resource]) => resource.Type === 'AWS::SSM::Document')
      .map(([logicalId, resource]) => [
        resolveIntrinsics({ Ref: logicalId }, template) as string,
        resolveIntrinsics(resource.Properties?.Content, template),
      ]),
  );
}

/** An EventBridge rule of the template with an event pattern, and the functions it targets. */
export interface EventRoute {
  pattern: Record<string, unknown>;
  /** The stepback function names of its Lambda targets. */
  functions: string[];
}

export function eventRoutes(template: CloudFormationTemplate): EventRoute[] {
  return Object.values(template.Resources)
    .filter((resource) => resource.Type === 'AWS::Events::Rule' && resource.Properties?.EventPattern)
    .map((resource) => {
      const properties = resolveIntrinsics(resource.Properties, template) as {
        EventPattern: Record<string, unknown>;
        Targets?: { Arn: string }[];
      };
      const functions = (properties.Targets ?? []).flatMap(
        (target) => /:function:([a-z-]+)$/.exec(target.Arn)?.[1] ?? [],
      );
      return { pattern: properties.EventPattern, functions };
    });
}

/** EventBridge matching for the patterns the stack uses: lists of exact values, nested objects. */
export function matchesEventPattern(
  pattern: Record<string, unknown>,
  event: Record<string, unknown>,
): boolean {
  return Object.entries(pattern).every(([key, expected]) => {
    const actual = event[key];
    if (Array.isArray(expected)) return expected.includes(actual);
    if (typeof expected === 'object' && expected !== null) {
      return (
        typeof actual === 'object' &&
        actual !== null &&
        matchesEventPattern(expected as Record<string, unknown>, actual as Record<string, unknown>)
      );
    }
    return false;
  });
}

export interface StateDefinition {
  Type: string;
  Resource?: string;
  HeartbeatSeconds?: number;
  ItemProcessor?: StateMachineDefinition;
  Iterator?: StateMachineDefinition;
  Branches?: StateMachineDefinition[];
  [field: string]: unknown;
}

export interface StateMachineDefinition {
  StartAt: string;
  States: Record<string, StateDefinition>;
  [field: string]: unknown;
}

/** Every state by name, including those inside Map and Parallel states. */
export function allStates(definition: StateMachineDefinition): [string, StateDefinition][] {
  return Object.entries(definition.States).flatMap(([name, state]) => [
    [name, state] as [string, StateDefinition],
    ...[state.ItemProcessor, state.Iterator, ...(state.Branches ?? [])].flatMap((inner) =>
      inner ? allStates(inner) : [],
    ),
  ]);
}
