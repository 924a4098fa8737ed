import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type CreateMultipartUploadCommandOutput,
  PutObjectCommand,
  type S3Client,
  type ServerSideEncryption,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { StorageError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { isAbort, s3CallError } from './s3-call.ts';

const MiB = 1024 * 1024;
/** S3 limits: parts of 5 MiB to 5 GiB, at most 10,000 of them. */
export const S3_MIN_PART = 5 * MiB;
export const S3_MAX_PART = 5 * 1024 * MiB;
export const S3_MAX_PARTS = 10_000;

/**
 * The part size for a file expected to hold `sizeHint` bytes: `minPartSize`, or more so the file fits
 * in 9,000 parts (room for a hint a little short, such as incompressible data that grew). Upload uses
 * one part size for a whole file, so a file without a hint holds at most 10,000 × `minPartSize`.
 */
export function partSizeFor(minPartSize: number, sizeHint?: number): number {
  let size = Math.max(minPartSize, S3_MIN_PART);
  if (sizeHint !== undefined && sizeHint > size * 9000) size = Math.ceil(sizeHint / 9000 / MiB) * MiB;
  return Math.min(S3_MAX_PART, size);
}

export interface ObjectUpload {
  client: S3Client;
  bucket: string;
  key: string;
  encryption: { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string };
  partSize: number;
  /** Parts uploading at once; each is held in memory. */
  queueSize: number;
  signal?: AbortSignal | undefined;
  logger: Logger;
  /** Told of each multipart upload while it is open, and when it is completed or aborted. */
  onMultipartUpload?: (uploadId: string, open: boolean) => void;
}

/** The name of an S3 call for messages (class names do not survive minifying). */
function callName(command: unknown): string {
  if (command instanceof UploadPartCommand) return `UploadPart ${command.input.PartNumber}`;
  if (command instanceof PutObjectCommand) return 'PutObject';
  if (command instanceof CreateMultipartUploadCommand) return 'CreateMultipartUpload';
  if (command instanceof CompleteMultipartUploadCommand) return 'CompleteMultipartUpload';
  if (command instanceof AbortMultipartUploadCommand) return 'AbortMultipartUpload';
  return 'request';
}

/**
 * Streams `input` into one object through lib-storage's Upload: one PutObject when it fits in a part,
 * else a multipart upload, `queueSize` parts at once, aborted on failure (leavePartsOnError false).
 * Resolves with the size and SHA-256 of the bytes read, once every one of them is stored.
 *
 * Upload is given the client with its `send` watched, for what Upload does not do itself: the first
 * failed call is kept and is what this rejects with, naming the call and the object (Upload would
 * throw the abort's error instead when the abort fails too); every call but the abort carries
 * `signal` (Upload sends none); open multipart uploads are reported, for abortBackup.
 */
export async function uploadObject(
  input: Readable,
  upload: ObjectUpload,
): Promise<{ size: number; sha256: string }> {
  const { client, bucket, key, signal, logger } = upload;
  const where = `s3://${bucket}/${key}`;
  const capacity = upload.partSize * S3_MAX_PARTS;
  const hash = createHash('sha256');
  let size = 0;
  let callFailure: { call: string; error: unknown } | undefined;
  let sourceFailure: unknown;

  async function* hashed(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of input as AsyncIterable<Buffer>) {
        signal?.throwIfAborted();
        size += chunk.length;
        if (size > capacity) {
          const message = `${where} needs more than ${S3_MAX_PARTS} parts of ${upload.partSize} bytes`;
          throw new StorageError(message, { hint: 'the size expected for this file was too small' });
        }
        hash.update(chunk);
        yield chunk;
      }
    } catch (error) {
      sourceFailure ??= error;
      throw error;
    }
  }

  const send = async (command: Parameters<S3Client['send']>[0]): Promise<unknown> => {
    const call = callName(command);
    const aborting = command instanceof AbortMultipartUploadCommand;
    try {
      const result = await client.send(command, signal && !aborting ? { abortSignal: signal } : {});
      if (command instanceof CreateMultipartUploadCommand) {
        const id = (result as CreateMultipartUploadCommandOutput).UploadId;
        if (id) upload.onMultipartUpload?.(id, true);
      }
      if (aborting || command instanceof CompleteMultipartUploadCommand) {
        const id = (command.input as { UploadId?: string }).UploadId;
        if (id) upload.onMultipartUpload?.(id, false);
      }
      return result;
    } catch (error) {
      if (aborting) {
        logger.warn('could not abort a multipart upload; the bucket lifecycle rule will', {
          key,
          error: (error as Error).message,
        });
      } else {
        callFailure ??= { call, error };
      }
      throw error;
    }
  };
  const watched = Object.create(client, { send: { value: send } }) as S3Client;

  const stopOnAbort = () => input.destroy(signal?.reason as Error);
  signal?.addEventListener('abort', stopOnAbort, { once: true });
  try {
    await new Upload({
      client: watched,
      params: {
        Bucket: bucket,
        Key: key,
        ...upload.encryption,
        Body: Readable.from(hashed(), { objectMode: false }),
      },
      partSize: upload.partSize,
      queueSize: upload.queueSize,
      leavePartsOnError: false,
    }).done();
  } catch (error) {
    if (callFailure) {
      if (isAbort(callFailure.error) && signal?.aborted) throw callFailure.error;
      throw s3CallError(callFailure.call, where, callFailure.error);
    }
    if (error === sourceFailure || isAbort(error)) throw error;
    throw new StorageError(`upload to ${where} failed: ${(error as Error).message}`, { cause: error });
  } finally {
    signal?.removeEventListener('abort', stopOnAbort);
    input.destroy();
  }
  return { size, sha256: hash.digest('hex') };
}
