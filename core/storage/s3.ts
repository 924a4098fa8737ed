import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';
import { MissingFileError, StorageError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { silentLogger } from '../log.ts';
import { type BackupManifest, MANIFEST_FILE, serializeManifest } from '../manifest.ts';
import { BackupName, isSafeSegment, parseBackupDir, StoredFileName } from '../paths.ts';
import { isAbort, isNotFound, S3CallError, s3CallError } from './s3-call.ts';
import { resumingBody } from './s3-download.ts';
import { partSizeFor, uploadObject } from './s3-upload.ts';
import type {
  BackupHandle,
  BackupRecordName,
  BackupStorage,
  FileSource,
  ListedFile,
  StoredFile,
  WriteFileOptions,
} from './types.ts';

export { partSizeFor, S3_MAX_PART, S3_MAX_PARTS, S3_MIN_PART } from './s3-upload.ts';

const MiB = 1024 * 1024;

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
  /** Smallest part of a multipart upload; a file's expected size may make its parts larger. Default 8 MiB. */
  minPartSize?: number;
  /** Parts of one file uploading at once (each held in memory). Default 2. */
  partConcurrency?: number;
  credentials?: S3ClientConfig['credentials'];
  logger?: Logger;
  /** Use this client instead of building one (tests, shared connection pools). */
  client?: S3Client;
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

  /** The s3:// URL of one object, for messages. */
  objectUrl(key: string): string {
    return `s3://${this.#options.bucket}/${key}`;
  }

  /** Runs one SDK call; a failure (after the SDK's retries) names the call and `where`. */
  async send<T>(what: string, call: () => Promise<T>, where = this.url): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (isNotFound(error) || isAbort(error)) throw error;
      throw s3CallError(what, where, error);
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
    const base = dir === '' ? this.key() : this.key(parseBackupDir(dir));
    const prefix = base === '' ? '' : `${base}/`;
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

  /** The stored bytes; a body that breaks off is resumed from where it stopped (see resumingBody). */
  async readFile(name: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    const key = `${this.prefix}/${StoredFileName.parse(name)}`;
    const storage = this.#storage;
    const { bucket } = storage.options;
    try {
      const first = await storage.send(
        'GetObject',
        () =>
          storage.client.send(
            new GetObjectCommand({ Bucket: bucket, Key: key }),
            options.signal ? { abortSignal: options.signal } : {},
          ),
        storage.objectUrl(key),
      );
      if (!(first.Body instanceof Readable)) throw new StorageError(`GetObject ${key} returned no stream`);
      return resumingBody(first, {
        client: storage.client,
        bucket,
        key,
        signal: options.signal,
        logger: this.#logger,
      });
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

  async writeRecord(name: BackupRecordName, text: string): Promise<void> {
    if (name !== 'DRILL.json') throw new StorageError(`${String(name)} is not a backup record`);
    let complete = false;
    for await (const entry of this.#storage.listKeys(`${this.prefix}/${MANIFEST_FILE}`)) {
      if (entry.key === `${this.prefix}/${MANIFEST_FILE}`) complete = true;
    }
    if (!complete) {
      throw new MissingFileError(
        MANIFEST_FILE,
        `backup ${this.dir}/${this.name} (a record goes beside a complete backup)`,
      );
    }
    await this.#putObject(`${this.prefix}/${name}`, Buffer.from(text));
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

  async #putObject(key: string, body: Buffer): Promise<void> {
    const storage = this.#storage;
    await storage.send(
      'PutObject',
      () =>
        storage.client.send(
          new PutObjectCommand({
            Bucket: storage.options.bucket,
            Key: key,
            Body: body,
            ...this.#encryption(),
          }),
        ),
      storage.objectUrl(key),
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

  /** Streams `source()` to `key`, one part per `partSize` bytes (see uploadObject). */
  async #upload(
    key: string,
    name: string,
    source: FileSource,
    options: WriteFileOptions,
  ): Promise<StoredFile> {
    const storage = this.#storage;
    const { bucket, minPartSize = 8 * MiB, partConcurrency = 2 } = storage.options;
    const stored = await uploadObject(await source(), {
      client: storage.client,
      bucket,
      key,
      encryption: this.#encryption(),
      partSize: partSizeFor(minPartSize, options.sizeHint),
      queueSize: partConcurrency,
      signal: options.signal,
      logger: this.#logger,
      onMultipartUpload: (uploadId, open) => {
        if (open) this.#uploads.set(uploadId, key);
        else this.#uploads.delete(uploadId);
      },
    });
    return { name, ...stored };
  }
}
