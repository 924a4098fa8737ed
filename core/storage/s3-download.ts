import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, type GetObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { StorageError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { isAbort, s3CallError } from './s3-call.ts';

/** Attempts in a row that pass on no new byte before a download gives up. */
const RESUME_ATTEMPTS = 5;

export interface ObjectDownload {
  client: S3Client;
  bucket: string;
  key: string;
  signal?: AbortSignal | undefined;
  logger: Logger;
}

/** The object changed between two requests of one download: the bytes cannot be joined. */
export class ObjectChangedError extends StorageError {
  override readonly code = 'STORAGE_OBJECT_CHANGED';
}

/**
 * The bytes of an object whose GET already answered with `first`. When the body breaks off (a reset,
 * a short body), the rest is asked for with `Range: bytes=N-` from the first byte not yet passed on,
 * so whoever hashes the stream goes on hashing where it was. Each resumed request names the first
 * answer's ETag (If-Match, and VersionId when the bucket is versioned) and its answer is checked to
 * carry the same ETag and start at N: bytes of two versions are never joined.
 */
export function resumingBody(first: GetObjectCommandOutput, download: ObjectDownload): Readable {
  const { client, bucket, key, signal, logger } = download;
  const where = `s3://${bucket}/${key}`;
  const etag = first.ETag;
  const total = first.ContentLength;
  const version = first.VersionId;

  const resume = async (offset: number): Promise<Readable> => {
    const answer = await client.send(
      new GetObjectCommand({
        Bucket: bucket,
        Key: key,
        Range: `bytes=${offset}-`,
        ...(etag ? { IfMatch: etag } : {}),
        ...(version ? { VersionId: version } : {}),
      }),
      signal ? { abortSignal: signal } : {},
    );
    const start = /^bytes (\d+)-/.exec(answer.ContentRange ?? '')?.[1];
    if (answer.ETag !== etag || Number(start) !== offset) {
      (answer.Body as Readable | undefined)?.destroy();
      throw new ObjectChangedError(
        `${where} changed while it was being read: resuming at byte ${offset} got ETag ${answer.ETag} (${answer.ContentRange ?? 'no range'}), the first request ETag ${etag}`,
        { hint: 'something rewrote a stored backup file; check who writes to this bucket' },
      );
    }
    return answer.Body as Readable;
  };

  async function* bytes(): AsyncGenerator<Buffer> {
    let body: Readable | undefined = first.Body as Readable;
    let offset = 0;
    let failures = 0;
    for (;;) {
      try {
        body ??= await resume(offset);
        for await (const chunk of body as AsyncIterable<Buffer>) {
          offset += chunk.length;
          failures = 0;
          yield chunk;
        }
        if (total === undefined || offset >= total) return;
        throw new Error(`the body ended at byte ${offset} of ${total}`);
      } catch (error) {
        body = undefined;
        // A stopped read ends with the stop's reason, not the broken body it left behind.
        if (signal?.aborted) throw signal.reason;
        if (error instanceof ObjectChangedError || isAbort(error)) throw error;
        if ((error as { name?: string }).name === 'PreconditionFailed') {
          throw new ObjectChangedError(
            `${where} changed while it was being read (ETag ${etag} no longer matches)`,
            {
              cause: error,
            },
          );
        }
        if (total !== undefined && offset >= total) return;
        failures++;
        if (failures >= RESUME_ATTEMPTS) {
          throw s3CallError(`GetObject (stopped at byte ${offset} of ${total ?? 'unknown'})`, where, error);
        }
        logger.warn('download interrupted; resuming from where it stopped', {
          key,
          offset,
          total,
          error: (error as Error).message,
        });
        await sleep(Math.min(2000, 100 * 2 ** (failures - 1)), undefined, signal ? { signal } : {});
      }
    }
  }

  return Readable.from(bytes(), { objectMode: false });
}
