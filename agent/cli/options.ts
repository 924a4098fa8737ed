import type { Command } from 'commander';
import { z } from 'zod';
import type { StepbackEnvironment } from '../../core/environment.ts';
import type { Logger } from '../../core/log.ts';
import { BackupDir } from '../../core/paths.ts';
import { openStorage } from '../../core/storage/index.ts';
import type { BackupStorage } from '../../core/storage/types.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';

/** Flags shared by every command that reads or writes backups. */
export function addStorageOptions(command: Command): Command {
  return command
    .requiredOption('--storage <url>', 'backup storage: file:///abs/dir or s3://bucket/prefix')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint (default: AWS_ENDPOINT_URL_S3, else AWS)')
    .option('--s3-path-style', 'path-style bucket addressing (default: STEPBACK_S3_PATH_STYLE)')
    .option('--sse <mode>', 'server-side encryption for new objects: AES256 or aws:kms')
    .option('--sse-kms-key-id <id>', 'KMS key for --sse aws:kms (default: the bucket key)');
}

export const StorageOptions = z.object({
  storage: z.string().min(1),
  s3Endpoint: z.url().optional(),
  s3PathStyle: z.boolean().optional(),
  sse: z.enum(['AES256', 'aws:kms']).optional(),
  sseKmsKeyId: z.string().min(1).optional(),
});
export type StorageOptions = z.infer<typeof StorageOptions>;

export const DirOption = z.object({ dir: BackupDir });

export function storageFrom(
  options: StorageOptions,
  env: StepbackEnvironment,
  logger: Logger,
): Promise<BackupStorage> {
  return openStorage(options.storage, {
    s3Endpoint: options.s3Endpoint ?? env.s3Endpoint,
    s3PathStyle: options.s3PathStyle ?? env.s3PathStyle,
    region: env.region,
    serverSideEncryption: options.sse,
    kmsKeyId: options.sseKmsKeyId,
    logger,
  });
}

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

export const InstanceOptions = z.object({
  defaultsFile: z.string().min(1),
  mysqld: z.string().min(1).optional(),
  systemdService: z
    .string()
    .regex(/^[A-Za-z0-9@._-]+$/, 'must be a unit name like mariadb or mysql@main')
    .optional(),
});
export type InstanceOptions = z.infer<typeof InstanceOptions>;

/** Opens the instance; the MySQL client and daemon code load here, not when the CLI starts. */
export async function openDaemon(options: InstanceOptions, logger: Logger): Promise<MysqlDaemon> {
  const { MysqlDaemon } = await import('../mysqld/daemon.ts');
  return MysqlDaemon.open({
    defaultsFile: options.defaultsFile,
    mysqld: options.mysqld,
    control: options.systemdService
      ? { kind: 'systemd', service: options.systemdService }
      : { kind: 'direct' },
    logger,
  });
}
