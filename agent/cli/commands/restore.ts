import { FieldError } from '../../../core/errors.ts';
import type { RestoreResult } from '../../operations/restore.ts';
import { formatBytes, formatSeconds } from '../../report/format.ts';
import {
  type Flags,
  instanceFields,
  numberFlag,
  type OperationCommand,
  storageFields,
} from '../operation-command.ts';
import { addInstanceOptions, addStorageOptions } from '../options.ts';

export function renderRestoreSummary(result: RestoreResult): string {
  if (result.startedEmpty) {
    return [
      `started empty: ${result.reason}`,
      `position  ${result.position || '(empty)'}`,
      ...(result.localMetadataWritten ? ['local metadata written'] : []),
      ...(result.replication
        ? [
            `replicating from ${result.replication.source}, caught up to ${result.replication.caughtUpTo || '(empty)'}`,
          ]
        : []),
    ].join('\n');
  }
  return [
    `restored ${result.dir}/${result.backup} (${result.storage})`,
    `position  ${result.position || '(empty)'}`,
    `${result.engine === 'online' ? 'parts    ' : 'files    '} ${result.files}: ${formatBytes(result.bytes.raw)}`,
    ...(result.replacedDatabases.length > 0 ? [`replaced  ${result.replacedDatabases.join(', ')}`] : []),
    ...(result.pointInTime
      ? [
          `to        ${result.pointInTime.point}: ${result.pointInTime.transactions} transaction(s) from ${result.pointInTime.binlogs.length} archived binary log(s)${result.pointInTime.binlogs.length > 0 ? ` (${result.pointInTime.binlogs.map((b) => b.file).join(', ')})` : ''}`,
          `last      ${result.pointInTime.lastApplied ? `${result.pointInTime.lastApplied.gtid ?? '(no GTID)'} committed ${result.pointInTime.lastApplied.time}` : 'none: the backup itself is the point'}`,
        ]
      : []),
    ...(result.replication
      ? [
          `replicating from ${result.replication.source}, caught up to ${result.replication.caughtUpTo || '(empty)'}`,
        ]
      : []),
    `time      ${formatSeconds(result.seconds)} in all, ${formatSeconds(result.downloadSeconds)} downloading, ${formatSeconds(result.swapSeconds)} swapping and starting`,
  ].join('\n');
}

/** `host:port`, `[v6]:port` or `v6:port` (the port is after the last colon). */
function hostAndPort(text: string): { host: string; port: unknown } {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.:-]+):(\d{1,5})$/.exec(text);
  if (!match) throw new FieldError(['replicateFrom'], `must be HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) };
}

/** `--local-metadata key=value …` → a record; the schema checks the keys. */
function metadataPairs(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  const entries = value.map((pair: string, index) => {
    const at = pair.indexOf('=');
    if (at < 1)
      throw new FieldError(
        ['localMetadata', String(index)],
        `must be key=value, got ${JSON.stringify(pair)}`,
      );
    return [pair.slice(0, at), pair.slice(at + 1)];
  });
  return Object.fromEntries(entries);
}

function replicateFrom(flags: Flags): unknown {
  if (typeof flags.replicateFrom !== 'string') return undefined;
  return {
    ...hostAndPort(flags.replicateFrom),
    user: flags.replicationUser,
    passwordEnv: flags.replicationPasswordEnv,
  };
}

export const restoreCommand: OperationCommand<'restore'> = {
  operation: 'restore',
  declare: (program) =>
    addInstanceOptions(
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
      .option(
        '--allow-empty',
        'no backup in --dir yet (a new shard): start the instance empty, as its first replica, instead of failing',
      )
      .option('--concurrency <n>', 'files downloaded at once (an online backup: parts downloaded ahead)', '4')
      .option(
        '--local-metadata <key=value...>',
        "key/values for the restored instance's local metadata table",
      )
      .option(
        '--replicate-from <host:port>',
        'replicate from this primary once restored, and wait until caught up',
      )
      .option('--replication-user <user>', 'replication user on the primary')
      .option('--replication-password-env <variable>', "environment variable holding the user's password")
      .option('--replication-timeout <seconds>', 'how long to wait for replication to catch up', '3600')
      .option(
        '--to-time <time>',
        'restore to this moment (ISO 8601, e.g. 2026-12-01T14:03:12Z): the newest backup before it, then the archived binary logs up to the last transaction committed at or before it',
      )
      .option(
        '--to-gtid <gtid>',
        'restore up to and including this GTID: the newest backup without it, then the archived binary logs',
      ),
  toRequest: (flags) => ({
    ...storageFields(flags),
    ...instanceFields(flags),
    dir: flags.dir,
    backup: flags.backup,
    deleteBeforeRestore: flags.deleteBeforeRestore,
    allowEmpty: flags.allowEmpty,
    concurrency: numberFlag(flags.concurrency),
    localMetadata: metadataPairs(flags.localMetadata),
    replicateFrom: replicateFrom(flags),
    replicationTimeout: numberFlag(flags.replicationTimeout),
    toTime: flags.toTime,
    toGtid: flags.toGtid,
  }),
  flagOfField: {
    replicateFrom: '--replicate-from',
    'replicateFrom.user': '--replication-user',
    'replicateFrom.passwordEnv': '--replication-password-env',
  },
  render: renderRestoreSummary,
};
