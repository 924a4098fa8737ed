import type { StepbackEnvironment } from '../../core/environment.ts';
import type { Logger } from '../../core/log.ts';
import type { InstanceRequest, StorageRequest } from '../../core/operations/fields.ts';
import { openStorage } from '../../core/storage/index.ts';
import type { BackupStorage } from '../../core/storage/types.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';

/** The storage a request names; S3 settings not in the request come from the environment. */
export function openRequestStorage(
  request: StorageRequest,
  env: StepbackEnvironment,
  logger: Logger,
): Promise<BackupStorage> {
  return openStorage(request.storage, {
    s3Endpoint: request.s3Endpoint ?? env.s3Endpoint,
    s3PathStyle: request.s3PathStyle ?? env.s3PathStyle,
    region: env.region,
    serverSideEncryption: request.sse,
    kmsKeyId: request.sseKmsKeyId,
    logger,
  });
}

/** Opens the storage, runs `work`, and closes the storage whatever happened. */
export async function withRequestStorage<T>(
  request: StorageRequest,
  context: { env: StepbackEnvironment; logger: Logger },
  work: (storage: BackupStorage) => Promise<T>,
): Promise<T> {
  const storage = await openRequestStorage(request, context.env, context.logger);
  try {
    return await work(storage);
  } finally {
    await storage.close();
  }
}

/** The instance a request names; the MySQL client and daemon code load here, not when the CLI starts. */
export async function openInstance(request: InstanceRequest, logger: Logger): Promise<MysqlDaemon> {
  const { MysqlDaemon } = await import('../mysqld/daemon.ts');
  return MysqlDaemon.open({
    defaultsFile: request.defaultsFile,
    mysqld: request.mysqld,
    control: request.systemdService
      ? { kind: 'systemd', service: request.systemdService }
      : { kind: 'direct' },
    logger,
  });
}
