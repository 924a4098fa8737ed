import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { S3StorageOptions } from './s3.ts';
import type { BackupStorage } from './types.ts';

export type * from './types.ts';

/** Settings of the S3 implementation that do not belong in the URL's bucket and prefix. */
export interface StorageSettings {
  s3Endpoint?: string | undefined;
  s3PathStyle?: boolean | undefined;
  region?: string | undefined;
  serverSideEncryption?: 'AES256' | 'aws:kms' | undefined;
  kmsKeyId?: string | undefined;
  minPartSize?: number | undefined;
  logger?: Logger | undefined;
}

/**
 * The storage a URL names: `file:///abs/dir` or `s3://bucket/prefix`. An S3 URL may carry
 * `?endpoint=…&pathStyle=true&region=…&sse=AES256|aws:kms&kmsKeyId=…`, which win over `settings`.
 * Each implementation is loaded on first use, so a command on a directory never loads the AWS SDK.
 */
export async function openStorage(url: string, settings: StorageSettings = {}): Promise<BackupStorage> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`storage URL ${JSON.stringify(url)} is not a URL`, {
      hint: 'use file:///absolute/dir or s3://bucket/prefix',
    });
  }
  if (parsed.protocol === 'file:') {
    if (parsed.host !== '') {
      throw new UsageError(`storage URL ${url} must be file:///absolute/path (no host)`, {
        hint: `three slashes, then the absolute directory: file:///${parsed.host}${parsed.pathname}`,
      });
    }
    const { FileBackupStorage } = await import('./file.ts');
    return new FileBackupStorage(fileURLToPath(parsed));
  }
  if (parsed.protocol === 's3:') {
    if (!parsed.hostname) {
      const path = parsed.pathname.replace(/^\/+/, '');
      throw new UsageError(`storage URL ${url} names no bucket: an S3 URL is s3://bucket/prefix`, {
        hint: `two slashes, then the bucket${path ? `: s3://${path}` : ', e.g. s3://my-backups/prod'}`,
      });
    }
    const query = parsed.searchParams;
    const sse = query.get('sse') ?? settings.serverSideEncryption;
    if (sse !== undefined && sse !== 'AES256' && sse !== 'aws:kms') {
      throw new UsageError(`server-side encryption must be AES256 or aws:kms, got ${sse}`);
    }
    const pathStyle = query.get('pathStyle');
    const options: S3StorageOptions = {
      bucket: parsed.hostname,
      prefix: decodeURIComponent(parsed.pathname),
      endpoint: query.get('endpoint') ?? settings.s3Endpoint,
      region: query.get('region') ?? settings.region,
      forcePathStyle: pathStyle === null ? settings.s3PathStyle : /^(1|true)$/.test(pathStyle),
      serverSideEncryption: sse,
      kmsKeyId: query.get('kmsKeyId') ?? settings.kmsKeyId,
      minPartSize: settings.minPartSize,
      logger: settings.logger,
    };
    const { S3BackupStorage } = await import('./s3.ts');
    return new S3BackupStorage(options);
  }
  throw new UsageError(`storage URL ${url} has an unknown scheme ${parsed.protocol}`, {
    hint: 'use file:///absolute/dir or s3://bucket/prefix',
  });
}
