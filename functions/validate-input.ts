import { z } from 'zod';
import type { AgentRequestFor } from '../core/agent-request.ts';
import { DEFAULT_MAX_DRILL_AGE_DAYS } from '../core/drill-report.ts';
import { UsageError } from '../core/errors.ts';
import { defaultsFileFor, systemdServiceFor } from './environment.ts';
import {
  BackupInput,
  BinlogArchiveInput,
  DrillInput,
  describeIssue,
  machineInputs,
  ReshardInput,
  RestoreInput,
} from './inputs.ts';
import { assertRequestFits } from './request-size.ts';
import { defineFunction, type FunctionContext, lambdaHandler } from './runtime.ts';

/**
 * The first state of every state machine: validates the execution input against that machine's
 * schema (the error names the field) and fills in this deployment's defaults, so later states read
 * every field without guessing.
 */

export const ValidateInputEvent = z.object({
  machine: z.enum(['backup', 'restore', 'reshard', 'drill', 'binlogArchive']),
  input: z.unknown(),
});

export function normalizeBackup(input: BackupInput, context: FunctionContext) {
  const { defaults, storageUrl } = context.settings;
  if (input.keyspaces && !context.settings.topologyUrl) {
    throw new UsageError('input.keyspaces: this deployment has no topology store; list targets instead', {
      hint: 'give targets: [{ keyspace, shard, host }], or set topology in cdk.json',
    });
  }
  return {
    storage: storageUrl,
    targets: (input.targets ?? []).map((target) => ({
      ...target,
      defaultsFile: defaultsFileFor(context.settings, target.host, target.defaultsFile),
    })),
    keyspaces: input.keyspaces ?? [],
    retention: input.retention ?? defaults.retention,
    backup: {
      engine: input.engine ?? defaults.backup.engine,
      compression: input.compression ?? defaults.backup.compression,
      concurrency: input.concurrency ?? defaults.backup.concurrency,
    },
  };
}
export type NormalizedBackup = ReturnType<typeof normalizeBackup>;

/** The shards whose binary logs are archived, resolved to hosts as a backup's are. */
export function normalizeBinlogArchive(input: BinlogArchiveInput, context: FunctionContext) {
  const backup = normalizeBackup({ targets: input.targets, keyspaces: input.keyspaces }, context);
  return {
    storage: backup.storage,
    targets: backup.targets,
    keyspaces: backup.keyspaces,
    maxAge: input.maxAge ?? 300,
    compression: input.compression ?? 'zstd',
  };
}

export function normalizeRestore(input: RestoreInput, context: FunctionContext) {
  const dir = `${input.keyspace}/${input.shard}`;
  const request: Omit<AgentRequestFor<'restore'>, 'backup'> = {
    operation: 'restore',
    storage: context.settings.storageUrl,
    dir,
    defaultsFile: defaultsFileFor(context.settings, input.host, input.defaultsFile),
    ...systemdServiceFor(context.settings, input.systemdService),
    deleteBeforeRestore: input.deleteBeforeRestore,
    localMetadata: input.localMetadata ?? null,
    replicateFrom: input.replicateFrom ?? null,
    ...(input.toTime ? { toTime: input.toTime } : {}),
    ...(input.toGtid ? { toGtid: input.toGtid } : {}),
  };
  assertRequestFits('restore', request, { defaultsFile: 'input.defaultsFile' });
  return {
    storage: context.settings.storageUrl,
    keyspace: input.keyspace,
    shard: input.shard,
    dir,
    host: input.host,
    choice: {
      name: input.backup === 'latest' ? null : input.backup,
      atOrBefore: input.atOrBefore ?? input.toTime ?? null,
      beforeGtid: input.toGtid ?? null,
    },
    /** The agent request, less the backup that choose-backup picks. */
    request,
  };
}

export function normalizeReshard(input: ReshardInput, context: FunctionContext) {
  if (input.cells && !context.settings.topologyUrl) {
    throw new UsageError('input.cells: this deployment has no topology store to rebuild the vschema in', {
      hint: 'leave cells out, or set topology in cdk.json',
    });
  }
  if (input.cutover && !context.settings.topologyUrl) {
    throw new UsageError(
      'input.cutover: this deployment has no topology store to switch the serving shards in',
      {
        hint: 'set topology in cdk.json, or leave cutover out to copy, catch up and diff without switching',
      },
    );
  }
  const dir = `${input.keyspace}/${input.shard}`;
  const keyMode = input.keyColumn !== undefined;
  const keyRanges = keyMode ? [...new Set(input.destinations.map((d) => d.keyRange!))] : null;
  const snapshotRequest: AgentRequestFor<'snapshot'> = {
    operation: 'snapshot',
    storage: context.settings.storageUrl,
    dir,
    defaultsFile: defaultsFileFor(context.settings, input.sourceHost, input.sourceDefaultsFile),
    ...systemdServiceFor(context.settings, input.sourceSystemdService),
    database: input.database,
    keyColumn: input.keyColumn ?? null,
    keyType: input.keyType ?? null,
    keyRanges,
    tables: input.tables ?? null,
    excludeTables: input.excludeTables ?? null,
    maxFileSize: input.maxFileSize ?? null,
    concurrency: input.concurrency ?? null,
  };
  assertRequestFits('snapshot', snapshotRequest, {
    keyRanges: 'input.destinations[].keyRange',
    defaultsFile: 'input.sourceDefaultsFile',
  });
  // Each destination's diff carries the tables and both URIs.
  input.destinations.forEach((destination, index) => {
    assertRequestFits(
      'diff',
      {
        operation: 'diff',
        left: input.sourceUri,
        right: destination.uri,
        tables: input.tables ?? null,
        leftKeyRange: destination.keyRange ?? null,
        keyColumn: input.keyColumn ?? null,
        keyType: input.keyType ?? null,
        leftPasswordEnv: input.sourcePasswordEnv ?? null,
        rightPasswordEnv: destination.passwordEnv ?? null,
      },
      { left: 'input.sourceUri', right: `input.destinations[${index}].uri` },
      0,
    );
  });
  // The consistent point: the source replica stops replicating while every destination catches up to
  // where it stopped and is diffed, then replicates again.
  const replication = (action: 'stop' | 'start'): AgentRequestFor<'replication'> => ({
    operation: 'replication',
    defaultsFile: snapshotRequest.defaultsFile,
    ...systemdServiceFor(context.settings, input.sourceSystemdService),
    action,
  });
  return {
    storage: context.settings.storageUrl,
    keyspace: input.keyspace,
    shard: input.shard,
    dir,
    sourceHost: input.sourceHost,
    snapshotRequest,
    stopSourceReplication: replication('stop'),
    startSourceReplication: replication('start'),
    freezeTimeoutSeconds: input.freezeTimeoutSeconds,
    /** The serving vschema rebuild after the copy; null when the deployment has no topology store. */
    vschema: context.settings.topologyUrl ? { cells: input.cells ?? null } : null,
    plan: {
      database: input.database,
      keyColumn: input.keyColumn ?? null,
      keyType: input.keyType ?? null,
      tables: input.tables ?? null,
      maxLagSeconds: input.maxLagSeconds ?? null,
      writeBinlogs: !input.skipDestinationBinlogs,
      cutover: input.cutover,
      dryRun: input.dryRun,
      /** The primary a cutover freezes; null: the topology store's primary of the shard. */
      sourcePrimary: input.sourcePrimaryHost
        ? {
            host: input.sourcePrimaryHost,
            defaultsFile: defaultsFileFor(
              context.settings,
              input.sourcePrimaryHost,
              input.sourcePrimaryDefaultsFile,
            ),
            systemdService: input.sourcePrimarySystemdService ?? null,
          }
        : null,
      source: { uri: input.sourceUri, passwordEnv: input.sourcePasswordEnv ?? null },
      destinations: input.destinations.map((destination) => ({
        host: destination.host,
        defaultsFile: defaultsFileFor(context.settings, destination.host, destination.defaultsFile),
        systemdService: destination.systemdService ?? null,
        keyRange: destination.keyRange ?? null,
        uri: destination.uri,
        passwordEnv: destination.passwordEnv ?? null,
      })),
    },
  };
}
export type NormalizedReshard = ReturnType<typeof normalizeReshard>;

export function normalizeDrill(input: DrillInput, context: FunctionContext) {
  return {
    storage: context.settings.storageUrl,
    host: input.host,
    keyspaces: input.keyspaces ?? null,
    maxAgeDays: input.maxAgeDays ?? context.settings.defaults.drill?.maxAgeDays ?? DEFAULT_MAX_DRILL_AGE_DAYS,
    /** The agent request of every drill, less the backup and directory plan-drills picks. */
    request: {
      operation: 'drill' as const,
      storage: context.settings.storageUrl,
      defaultsFile: defaultsFileFor(context.settings, input.host, input.defaultsFile),
      ...systemdServiceFor(context.settings, input.systemdService),
    },
  };
}
export type NormalizedDrill = ReturnType<typeof normalizeDrill>;

export const validateInput = defineFunction({
  name: 'validate-input',
  event: ValidateInputEvent,
  async run(event, context) {
    const parsed = machineInputs[event.machine].safeParse(event.input ?? {});
    if (!parsed.success) {
      throw new UsageError(describeIssue('input', parsed.error.issues[0]), {
        hint: `see the ${event.machine} input in the README`,
      });
    }
    switch (event.machine) {
      case 'backup':
        return normalizeBackup(BackupInput.parse(parsed.data), context);
      case 'restore':
        return normalizeRestore(RestoreInput.parse(parsed.data), context);
      case 'reshard':
        return normalizeReshard(ReshardInput.parse(parsed.data), context);
      case 'drill':
        return normalizeDrill(DrillInput.parse(parsed.data), context);
      case 'binlogArchive':
        return normalizeBinlogArchive(BinlogArchiveInput.parse(parsed.data), context);
    }
  },
});

export const handler = lambdaHandler(validateInput);
