import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  type ServerSideEncryption,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { MissingFileError, StorageError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { silentLogger } from '../log.ts';
import { type BackupManifest, MANIFEST_FILE, serializeManifest } from '../manifest.ts';
import { BackupName, isSafeSegment, parseBackupDir, StoredFileName } from '../paths.ts';
import type {
  BackupHandle,
  BackupStorage,
  FileSource,
  ListedFile,
  StoredFile,
  WriteFileOptions,
} from './types.ts';

const MiB = 1024 * 1024;
/** S3 limits: parts of 5 MiB to 5 GiB, at most 10,000 of them. */
export const S3_MIN_PART = 5 * MiB;
export const S3_MAX_PART = 5 * 1024 * MiB;
export const S3_MAX_PARTS = 10_000;

export interface S3StorageOptions {
  bucket: string;
  /** Key prefix under which `<dir>/<name>/<file>` go; may be empty. */
  prefix?: string;
  /** An S3-compatible endpoint (default: AWS_ENDPOINT_URL_S3 via the caller, else AWS). */
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  serverSideEncryption?: 'AES256' | 'aws:kms';
  kmsKeyId?: string;
  /** Size of the first parts of a multipart upload; parts grow from there. Default 8 MiB. */
  minPartSize?: number;
  /** Parts of one file uploading at once (each held in memory). Default 2. */
  partConcurrency?: number;
  credentials?: S3ClientConfig['credentials'];
  logger?: Logger;
  /** Use this client instead of building one (tests, shared connection pools). */
  client?: S3Client;
}

/**
 * Part `partNumber` (1-based) of a file: `base` for the first 1,000 parts, doubling every 1,000 after,
 * so 10,000 parts reach 1,023 × 1,000 × base (8 TiB at 8 MiB) while small files keep small parts.
 * A size hint raises `base` so a file of that size fits in 9,000 parts without growing.
 */
export function partSizeFor(partNumber: number, minPartSize: number, sizeHint?: number): number {
  let base = Math.max(minPartSize, 1);
  if (sizeHint !== undefined && sizeHint > base * 9000) base = Math.ceil(sizeHint / 9000 / MiB) * MiB;
  const doublings = Math.floor((partNumber - 1) / 1000);
  return Math.min(S3_MAX_PART, base * 2 ** doublings);
}

/** Failure of a call to S3 itself (after the SDK's own retries): worth one whole-file retry. */
class S3CallError extends StorageError {
  override readonly code = 'STORAGE_S3';
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

/** Backup storage in an S3 bucket (or any S3-compatible server), through the AWS SDK v3. */
export class S3BackupStorage implements BackupStorage {
  readonly url: string;
  readonly client: S3Client;
  readonly #options: S3StorageOptions;
  readonly #prefix: string;
  readonly #ownsClient: boolean;

  constructor(options: S3StorageOptions) {
    this.#options = options;
    this.#prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.url = `s3://${options.bucket}/${this.#prefix}`;
    this.#ownsClient = !options.client;
    this.client =
      options.client ??
      new S3Client({
        region: options.region ?? 'us-east-1',
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        forcePathStyle: options.forcePathStyle ?? false,
        // Streamed bodies must not be sent aws-chunked: S3-compatible servers store the framing.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        maxAttempts: 5,
        ...(options.credentials ? { credentials: options.credentials } : {}),
      });
  }

  get options(): S3StorageOptions {
    return this.#options;
  }

  key(...parts: string[]): string {
    return [this.#prefix, ...parts].filter((part) => part !== '').join('/');
  }

  async send<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (isNotFound(error) || (error as Error).name === 'AbortError') throw error;
      throw new S3CallError(`S3 ${what} failed on ${this.url}: ${(error as Error).message}`, {
        cause: error,
        hint: 'check the endpoint, the credentials and the bucket policy',
      });
    }
  }

  /** Every key under `prefix`, page by page (S3 returns at most 1,000 per page). */
  async *listKeys(
    prefix: string,
    delimiter?: string,
  ): AsyncGenerator<{ key: string; size: number; isPrefix: boolean }> {
    let token: string | undefined;
    do {
      const page = await this.send('ListObjectsV2', () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.#options.bucket,
            Prefix: prefix,
            ...(delimiter ? { Delimiter: delimiter } : {}),
            ...(token ? { ContinuationToken: token } : {}),
          }),
        ),
      );
      for (const common of page.CommonPrefixes ?? []) {
        if (common.Prefix) yield { key: common.Prefix, size: 0, isPrefix: true };
      }
      for (const object of page.Contents ?? []) {
        if (object.Key) yield { key: object.Key, size: object.Size ?? 0, isPrefix: false };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async listBackups(dir: string): Promise<BackupHandle[]> {
    const prefix = `${this.key(parseBackupDir(dir))}/`;
    const names: string[] = [];
    for await (const entry of this.listKeys(prefix, '/')) {
      if (!entry.isPrefix) continue;
      const name = entry.key.slice(prefix.length).replace(/\/$/, '');
      if (BackupName.safeParse(name).success) names.push(name);
    }
    return names.sort().map((name) => this.openBackup(dir, name));
  }

  /**
   * One request per directory: the first key after the last directory found names the next one.
   * (A delimiter listing would do it in fewer requests on S3, but the S3 protocol server the tests
   * use finds no common prefix more than one level below the prefix.) Every key character a
   * storage name may hold sorts below `~`, so `<dir>/~` is past everything in `<dir>/`.
   */
  async listDirectories(dir: string): Promise<string[]> {
    const prefix = `${this.key(parseBackupDir(dir))}/`;
    const names: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.send('ListObjectsV2', () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.#options.bucket,
            Prefix: prefix,
            MaxKeys: 1,
            ...(after ? { StartAfter: after } : {}),
          }),
        ),
      );
      const key = page.Contents?.[0]?.Key;
      const slash = key?.indexOf('/', prefix.length) ?? -1;
      if (!key) return names.sort();
      if (slash < 0) {
        after = key; // an object directly in `dir`, not a directory
        continue;
      }
      const name = key.slice(prefix.length, slash);
      if (isSafeSegment(name)) names.push(name);
      after = `${prefix}${name}/~`;
    }
  }

  openBackup(dir: string, name: string): BackupHandle {
    return new S3BackupHandle(this, parseBackupDir(dir), BackupName.parse(name), false);
  }

  async startBackup(dir: string, name: string): Promise<BackupHandle> {
    const handle = new S3BackupHandle(this, parseBackupDir(dir), BackupName.parse(name), true);
    for await (const _ of this.listKeys(`${handle.prefix}/`)) {
      throw new StorageError(`backup ${dir}/${name} already exists in ${this.url}`, {
        hint: 'choose another --name, or remove the old backup first',
      });
    }
    return handle;
  }

  async removeBackup(dir: string, name: string): Promise<void> {
    await this.removePrefix(`${this.key(parseBackupDir(dir), BackupName.parse(name))}/`);
  }

  /** Deletes every object under `prefix`, 1,000 keys per request. */
  async removePrefix(prefix: string): Promise<void> {
    let batch: string[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const keys = batch;
      batch = [];
      const result = await this.send('DeleteObjects', () =>
        this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.#options.bucket,
            Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true },
          }),
        ),
      );
      const failed = result.Errors ?? [];
      if (failed.length > 0) {
        throw new StorageError(
          `could not delete ${failed.length} objects under ${prefix}: ${failed[0]?.Key} ${failed[0]?.Message ?? failed[0]?.Code}`,
        );
      }
    };
    for await (const entry of this.listKeys(prefix)) {
      batch.push(entry.key);
      if (batch.length === 1000) await flush();
    }
    await flush();
  }

  async close(): Promise<void> {
    if (this.#ownsClient) this.client.destroy();
  }
}

class S3BackupHandle implements BackupHandle {
  readonly dir: string;
  readonly name: string;
  readonly prefix: string;
  readonly #storage: S3BackupStorage;
  readonly #writable: boolean;
  /** Multipart uploads in progress: upload id → key, aborted by abortBackup. */
  readonly #uploads = new Map<string, string>();

  constructor(storage: S3BackupStorage, dir: string, name: string, writable: boolean) {
    this.#storage = storage;
    this.dir = dir;
    this.name = name;
    this.prefix = storage.key(dir, name);
    this.#writable = writable;
  }

  get #logger(): Logger {
    return this.#storage.options.logger ?? silentLogger;
  }

  async writeFile(name: string, source: FileSource, options: WriteFileOptions = {}): Promise<StoredFile> {
    this.#checkWritable();
    if (name === MANIFEST_FILE) throw new StorageError('the MANIFEST is written by endBackup, last');
    const key = `${this.prefix}/${StoredFileName.parse(name)}`;
    try {
      return await this.#upload(key, name, source, options);
    } catch (error) {
      // The SDK retried each request; one more attempt of the whole file, re-reading and re-hashing it.
      if (!(error instanceof S3CallError) || options.replayable === false || options.signal?.aborted)
        throw error;
      this.#logger.warn('upload failed; retrying the whole file once', { file: name, error: error.message });
      return await this.#upload(key, name, source, options);
    }
  }

  async readFile(name: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    const key = `${this.prefix}/${StoredFileName.parse(name)}`;
    const storage = this.#storage;
    try {
      const result = await storage.send('GetObject', () =>
        storage.client.send(
          new GetObjectCommand({ Bucket: storage.options.bucket, Key: key }),
          options.signal ? { abortSignal: options.signal } : {},
        ),
      );
      if (!(result.Body instanceof Readable)) throw new StorageError(`GetObject ${key} returned no stream`);
      return result.Body;
    } catch (error) {
      if (isNotFound(error))
        throw new MissingFileError(name, `backup ${this.dir}/${this.name}`, { cause: error });
      throw error;
    }
  }

  async listFiles(): Promise<ListedFile[]> {
    const files: ListedFile[] = [];
    for await (const entry of this.#storage.listKeys(`${this.prefix}/`)) {
      const name = entry.key.slice(this.prefix.length + 1);
      if (StoredFileName.safeParse(name).success) files.push({ name, size: entry.size });
    }
    return files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async endBackup(manifest: BackupManifest): Promise<void> {
    this.#checkWritable();
    const body = Buffer.from(serializeManifest(manifest));
    await this.#putObject(`${this.prefix}/${MANIFEST_FILE}`, body);
  }

  async abortBackup(): Promise<void> {
    const storage = this.#storage;
    for (const [uploadId, key] of [...this.#uploads]) await this.#abortUpload(key, uploadId);
    await storage.removePrefix(`${this.prefix}/`);
  }

  #checkWritable(): void {
    if (!this.#writable)
      throw new StorageError(`backup ${this.dir}/${this.name} was not started by this handle`);
  }

  async #putObject(key: string, body: Buffer, signal?: AbortSignal): Promise<void> {
    const storage = this.#storage;
    await storage.send('PutObject', () =>
      storage.client.send(
        new PutObjectCommand({ Bucket: storage.options.bucket, Key: key, Body: body, ...this.#encryption() }),
        signal ? { abortSignal: signal } : {},
      ),
    );
  }

  #encryption(): { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string } {
    const { serverSideEncryption, kmsKeyId } = this.#storage.options;
    if (!serverSideEncryption) return {};
    return {
      ServerSideEncryption: serverSideEncryption,
      ...(serverSideEncryption === 'aws:kms' && kmsKeyId ? { SSEKMSKeyId: kmsKeyId } : {}),
    };
  }

  async #abortUpload(key: string, uploadId: string): Promise<void> {
    const storage = this.#storage;
    try {
      await storage.client.send(
        new AbortMultipartUploadCommand({ Bucket: storage.options.bucket, Key: key, UploadId: uploadId }),
      );
    } catch (error) {
      this.#logger.warn('could not abort a multipart upload; the bucket lifecycle rule will', {
        key,
        error: (error as Error).message,
      });
    }
    this.#uploads.delete(uploadId);
  }

  /**
   * Streams `source()` to `key`: one PutObject when it fits in the first part, else a multipart
   * upload holding at most `partConcurrency + 1` parts in memory.
   */
  async #upload(
    key: string,
    name: string,
    source: FileSource,
    options: WriteFileOptions,
  ): Promise<StoredFile> {
    const storage = this.#storage;
    const { bucket, minPartSize = 8 * MiB, partConcurrency = 2 } = storage.options;
    const signal = options.signal;
    const hash = createHash('sha256');
    let size = 0;
    let uploadId: string | undefined;
    const parts: { ETag: string; PartNumber: number }[] = [];
    const inFlight = new Map<number, Promise<void>>();
    let pending: Buffer[] = [];
    let pendingBytes = 0;

    const uploadPart = (partNumber: number, body: Buffer) => {
      const id = uploadId!;
      const task = storage
        .send('UploadPart', () =>
          storage.client.send(
            new UploadPartCommand({
              Bucket: bucket,
              Key: key,
              UploadId: id,
              PartNumber: partNumber,
              Body: body,
            }),
            signal ? { abortSignal: signal } : {},
          ),
        )
        .then((result) => {
          parts.push({ ETag: result.ETag ?? '', PartNumber: partNumber });
        })
        .finally(() => inFlight.delete(partNumber));
      task.catch(() => {});
      inFlight.set(partNumber, task);
    };

    const flushPart = async () => {
      const body = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      if (!uploadId) {
        const created = await storage.send('CreateMultipartUpload', () =>
          storage.client.send(
            new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ...this.#encryption() }),
          ),
        );
        uploadId = created.UploadId;
        if (!uploadId) throw new S3CallError(`CreateMultipartUpload for ${key} returned no upload id`);
        this.#uploads.set(uploadId, key);
      }
      const partNumber = parts.length + inFlight.size + 1;
      if (partNumber > S3_MAX_PARTS) throw new StorageError(`${name} needs more than ${S3_MAX_PARTS} parts`);
      while (inFlight.size >= partConcurrency) await Promise.race(inFlight.values());
      uploadPart(partNumber, body);
    };

    try {
      const input = await source();
      for await (const chunk of input as AsyncIterable<Buffer>) {
        signal?.throwIfAborted();
        hash.update(chunk);
        size += chunk.length;
        pending.push(chunk);
        pendingBytes += chunk.length;
        const partNumber = parts.length + inFlight.size + 1;
        if (pendingBytes >= partSizeFor(partNumber, minPartSize, options.sizeHint)) await flushPart();
      }
      if (!uploadId) {
        await this.#putObject(key, Buffer.concat(pending, pendingBytes), signal);
      } else {
        if (pendingBytes > 0) await flushPart();
        await Promise.all(inFlight.values());
        parts.sort((a, b) => a.PartNumber - b.PartNumber);
        const id = uploadId;
        await storage.send('CompleteMultipartUpload', () =>
          storage.client.send(
            new CompleteMultipartUploadCommand({
              Bucket: bucket,
              Key: key,
              UploadId: id,
              MultipartUpload: { Parts: parts },
            }),
          ),
        );
        this.#uploads.delete(uploadId);
      }
    } catch (error) {
      await Promise.allSettled(inFlight.values());
      if (uploadId) await this.#abortUpload(key, uploadId);
      throw error;
    }
    return { name, size, sha256: hash.digest('hex') };
  }
}
