import type { Command } from 'commander';
import { z } from 'zod';
import { UsageError } from '../../../core/errors.ts';
import { BackupName } from '../../../core/paths.ts';
import type { RestoreResult } from '../../operations/restore.ts';
import { formatBytes, formatSeconds } from '../../report/format.ts';
import type { ActionRunner } from '../command.ts';
import {
  addInstanceOptions,
  addStorageOptions,
  DirOption,
  InstanceOptions,
  openDaemon,
  PositiveInt,
  StorageOptions,
  storageFrom,
} from '../options.ts';

export function renderRestoreSummary(result: RestoreResult): string {
  return [
    `restored ${result.dir}/${result.backup} (${result.storage})`,
    `position  ${result.position || '(empty)'}`,
    `files     ${result.files}: ${formatBytes(result.bytes.raw)}`,
    ...(result.replacedDatabases.length > 0 ? [`replaced  ${result.replacedDatabases.join(', ')}`] : []),
    ...(result.replication
      ? [
          `replicating from ${result.replication.source}, caught up to ${result.replication.caughtUpTo || '(empty)'}`,
        ]
      : []),
    `time      ${formatSeconds(result.seconds)} in all, ${formatSeconds(result.downloadSeconds)} downloading, ${formatSeconds(result.swapSeconds)} swapping and starting`,
  ].join('\n');
}

/** `key=value`; keys are short names, values any text. */
const MetadataPair = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,128}=/, 'must be key=value with a key of letters, digits, "_", "." or "-"')
  .max(4096);

/** `host:port`, `[v6]:port` or `v6:port` (the port is after the last colon). */
const HostPort = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.:-]+):\d{1,5}$/, 'must be HOST:PORT')
  .transform((value) => {
    const at = value.lastIndexOf(':');
    return { host: value.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(value.slice(at + 1)) };
  })
  .refine((value) => value.port > 0 && value.port < 65536, 'port must be 1 to 65535');

export const RestoreOptions = StorageOptions.extend(DirOption.shape)
  .extend(InstanceOptions.shape)
  .extend({
    backup: BackupName.optional(),
    deleteBeforeRestore: z.boolean().optional(),
    concurrency: PositiveInt.default(4),
    localMetadata: z.array(MetadataPair).optional(),
    replicateFrom: HostPort.optional(),
    replicationUser: z.string().min(1).max(128).optional(),
    replicationPasswordEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
      .optional(),
    replicationTimeout: z.coerce
      .number()
      .int()
      .positive()
      .max(7 * 24 * 3600)
      .default(3600),
  })
  .superRefine((options, ctx) => {
    if (options.replicateFrom && !options.replicationUser) {
      ctx.addIssue({
        code: 'custom',
        path: ['replicationUser'],
        message: 'is required with --replicate-from',
      });
    }
  });

export function registerRestore(program: Command, action: ActionRunner): Command {
  const command = addInstanceOptions(
    addStorageOptions(
      program
        .command('restore')
        .description(
          'restore the newest complete backup (or --backup NAME) into an instance: stage and verify every file first, then swap',
        )
        .requiredOption('--dir <keyspace/shard>', 'backup directory, e.g. commerce/-80'),
    ),
  )
    .option('--backup <name>', 'the backup to restore (default: the newest complete one)')
    .option('--delete-before-restore', 'replace the user data the instance holds')
    .option('--concurrency <n>', 'files downloaded at once', '4')
    .option('--local-metadata <key=value...>', "key/values for the restored instance's local metadata table")
    .option(
      '--replicate-from <host:port>',
      'replicate from this primary once restored, and wait until caught up',
    )
    .option('--replication-user <user>', 'replication user on the primary')
    .option('--replication-password-env <variable>', "environment variable holding the user's password")
    .option('--replication-timeout <seconds>', 'how long to wait for replication to catch up', '3600');
  action(command, RestoreOptions, async (options, context) => {
    let password = '';
    if (options.replicationPasswordEnv) {
      const value = context.env.variable(options.replicationPasswordEnv);
      if (value === undefined) {
        throw new UsageError(
          `--replication-password-env: the variable ${options.replicationPasswordEnv} is not set`,
        );
      }
      password = value;
    }
    const localMetadata = Object.fromEntries(
      (options.localMetadata ?? []).map((pair) => {
        const at = pair.indexOf('=');
        return [pair.slice(0, at), pair.slice(at + 1)];
      }),
    );
    const storage = await storageFrom(options, context.env, context.logger);
    try {
      const daemon = await openDaemon(options, context.logger);
      const { runRestore } = await import('../../operations/restore.ts');
      const result = await runRestore(
        daemon,
        storage,
        {
          dir: options.dir,
          backup: options.backup,
          deleteBeforeRestore: Boolean(options.deleteBeforeRestore),
          concurrency: options.concurrency,
          localMetadata,
          replicateFrom: options.replicateFrom
            ? { ...options.replicateFrom, user: options.replicationUser!, password }
            : undefined,
          replicationTimeoutSeconds: options.replicationTimeout,
        },
        {
          logger: context.logger,
          progress: (update) => context.reporter.progress(update),
          signal: context.signal,
        },
      );
      return { result, summary: renderRestoreSummary(result) };
    } finally {
      await storage.close();
    }
  });
  return command;
}
