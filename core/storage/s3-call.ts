import { StorageError } from '../errors.ts';

/** Failure of a call to S3 itself (after the SDK's own retries): worth one whole-file retry. */
export class S3CallError extends StorageError {
  override readonly code = 'STORAGE_S3';
}

export function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

export function isAbort(error: unknown): boolean {
  return (error as Error)?.name === 'AbortError';
}

/** The error to throw for a failed S3 call on `where` (a storage URL or an object's s3:// URL). */
export function s3CallError(what: string, where: string, error: unknown): S3CallError {
  return new S3CallError(`S3 ${what} failed on ${where}: ${(error as Error).message}`, {
    cause: error,
    hint: 'check the endpoint, the credentials and the bucket policy; the SDK retried before giving up',
  });
}
