import type { Command } from 'commander';
import { z } from 'zod';
import { StorageSchema } from '../../core/operations/fields.ts';
import { BackupDir } from '../../core/paths.ts';

/** Flags shared by every command that reads or writes backups. */
export function addStorageOptions(command: Command): Command {
  return command
    .requiredOption('--storage <url>', 'backup storage: file:///abs/dir or s3://bucket/prefix')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint (default: AWS_ENDPOINT_URL_S3, else AWS)')
    .option('--s3-path-style', 'path-style bucket addressing (default: STEPBACK_S3_PATH_STYLE)')
    .option('--sse <mode>', 'server-side encryption for new objects: AES256 or aws:kms')
    .option('--sse-kms-key-id <id>', 'KMS key for --sse aws:kms (default: the bucket key)');
}

/** The storage flags of the commands that are not operations (`backups list`, …): the same fields. */
export const StorageOptions = StorageSchema;
export type StorageOptions = z.infer<typeof StorageOptions>;

export const DirOption = z.object({ dir: BackupDir });

/** A positive integer flag such as --concurrency. */
export const PositiveInt = z.coerce.number().int().positive().max(1024);

/** Flags of every command that drives a mysqld on this host. */
export function addInstanceOptions(command: Command): Command {
  return command
    .requiredOption('--defaults-file <path>', "the instance's my.cnf (datadir, socket, port, logs)")
    .option('--mysqld <path>', 'server binary (default: mariadbd or mysqld on PATH)')
    .option(
      '--systemd-service <name>',
      'start and stop mysqld through this systemd unit instead of directly',
    );
}
