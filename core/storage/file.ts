import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { MissingFileError, StorageError, SymlinkInStorageError } from '../errors.ts';
import { type BackupManifest, MANIFEST_FILE, serializeManifest } from '../manifest.ts';
import { BackupName, isSafeSegment, parseBackupDir, StoredFileName } from '../paths.ts';
import { HashingStream } from '../stream/hash.ts';
import { syncFiles } from '../stream/sync.ts';
import type {
  BackupHandle,
  BackupRecordName,
  BackupStorage,
  FileSource,
  ListedFile,
  StoredFile,
  WriteFileOptions,
} from './types.ts';

/** In-progress files start with a dot and never show in listings. */
const partialPrefix = '.partial-';

function storageError(action: string, target: string, error: unknown): StorageError {
  const code = (error as NodeJS.ErrnoException).code;
  const hint =
    code === 'ENOSPC'
      ? 'the backup disk is full: free space or use another storage URL'
      : code === 'EACCES' || code === 'EPERM'
        ? 'check the permissions of the storage directory'
        : undefined;
  return new StorageError(`cannot ${action} ${target}: ${(error as Error).message}`, { cause: error, hint });
}

/**
 * Refuses a symbolic link anywhere below `root` on the way to `relative` (the root itself may be
 * one: the operator chose it). Storage may be shared between hosts, so a link planted in it could
 * make a restore read, or a backup write, outside it. Stops at the first missing component.
 */
async function refuseLinks(root: string, relative: string): Promise<void> {
  let current = root;
  for (const segment of relative.split('/')) {
    current = path.join(current, segment);
    let stats: import('node:fs').Stats;
    try {
      stats = await fs.lstat(current);
    } catch (error) {
      // Missing (or under a file): the operation itself reports that, in its own words.
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw storageError('inspect', current, error);
    }
    if (stats.isSymbolicLink()) throw new SymlinkInStorageError(current);
  }
}

/** Backup storage in a local directory tree: `<root>/<dir>/<name>/<file>`. */
export class FileBackupStorage implements BackupStorage {
  readonly url: string;
  readonly root: string;

  constructor(root: string) {
    if (!path.isAbsolute(root)) throw new StorageError(`file storage root must be absolute, got ${root}`);
    this.root = path.resolve(root);
    this.url = pathToFileURL(this.root).href;
  }

  async listBackups(dir: string): Promise<BackupHandle[]> {
    const dirPath = path.join(this.root, parseBackupDir(dir));
    await refuseLinks(this.root, dir);
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(dirPath, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw storageError('list', dirPath, error);
    }
    const link = entries.find((entry) => entry.isSymbolicLink() && BackupName.safeParse(entry.name).success);
    if (link) throw new SymlinkInStorageError(path.join(dirPath, link.name));
    return entries
      .filter((entry) => entry.isDirectory() && BackupName.safeParse(entry.name).success)
      .map((entry) => entry.name)
      .sort()
      .map((name) => this.openBackup(dir, name));
  }

  async listDirectories(dir: string): Promise<string[]> {
    const dirPath = dir === '' ? this.root : path.join(this.root, parseBackupDir(dir));
    try {
      const entries = await fs.readdir(dirPath, { withFileTypes: true });
      return entries
        .filter((entry) => entry.isDirectory() && isSafeSegment(entry.name))
        .map((entry) => entry.name)
        .sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw storageError('list', dirPath, error);
    }
  }

  openBackup(dir: string, name: string): BackupHandle {
    return new FileBackupHandle(this.root, parseBackupDir(dir), BackupName.parse(name), false);
  }

  async startBackup(dir: string, name: string): Promise<BackupHandle> {
    const handle = new FileBackupHandle(this.root, parseBackupDir(dir), BackupName.parse(name), true);
    await refuseLinks(this.root, `${handle.dir}/${handle.name}`);
    try {
      await fs.mkdir(path.dirname(handle.path), { recursive: true });
      await fs.mkdir(handle.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new StorageError(`backup ${dir}/${name} already exists in ${this.url}`, {
          hint: 'choose another --name, or remove the old backup first',
        });
      }
      throw storageError('create', handle.path, error);
    }
    return handle;
  }

  async removeBackup(dir: string, name: string): Promise<void> {
    const target = path.join(this.root, parseBackupDir(dir), BackupName.parse(name));
    await refuseLinks(this.root, dir);
    try {
      await fs.rm(target, { recursive: true, force: true });
    } catch (error) {
      throw storageError('remove', target, error);
    }
  }

  async close(): Promise<void> {}
}

class FileBackupHandle implements BackupHandle {
  readonly dir: string;
  readonly name: string;
  readonly path: string;
  readonly #root: string;
  readonly #writable: boolean;
  /** Files written by this handle, made durable together before the MANIFEST is written. */
  readonly #written = new Set<string>();

  constructor(root: string, dir: string, name: string, writable: boolean) {
    this.dir = dir;
    this.name = name;
    this.path = path.join(root, dir, name);
    this.#root = root;
    this.#writable = writable;
  }

  async writeFile(name: string, source: FileSource, options: WriteFileOptions = {}): Promise<StoredFile> {
    this.#checkWritable(name);
    return this.#write(StoredFileName.parse(name), source, options.signal);
  }

  async readFile(name: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    const target = path.join(this.path, StoredFileName.parse(name));
    await refuseLinks(this.#root, `${this.dir}/${this.name}`);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(target, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new MissingFileError(name, `backup ${this.dir}/${this.name}`, { cause: error });
      }
      if ((error as NodeJS.ErrnoException).code === 'ELOOP') {
        throw new SymlinkInStorageError(target, { cause: error });
      }
      throw storageError('read', target, error);
    }
    return createReadStream('', {
      fd: handle,
      highWaterMark: 256 * 1024,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  async listFiles(): Promise<ListedFile[]> {
    await refuseLinks(this.#root, `${this.dir}/${this.name}`);
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(this.path, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw storageError('list', this.path, error);
    }
    const files = entries.filter((entry) => entry.isFile() && !entry.name.startsWith('.'));
    const listed = await Promise.all(
      files.map(async (entry) => ({
        name: entry.name,
        size: (await fs.stat(path.join(this.path, entry.name))).size,
      })),
    );
    return listed.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async endBackup(manifest: BackupManifest): Promise<void> {
    if (!this.#writable)
      throw new StorageError(`backup ${this.dir}/${this.name} was not started by this handle`);
    const text = serializeManifest(manifest);
    // Every file is on disk before the MANIFEST that makes the backup complete.
    try {
      await syncFiles(this.#written);
    } catch (error) {
      throw storageError('flush the files of', this.path, error);
    }
    await this.#write(MANIFEST_FILE, () => Readable.from([Buffer.from(text)]));
    await syncFiles([path.join(this.path, MANIFEST_FILE)]);
  }

  async writeRecord(name: BackupRecordName, text: string): Promise<void> {
    if (name !== 'DRILL.json') throw new StorageError(`${String(name)} is not a backup record`);
    await refuseLinks(this.#root, `${this.dir}/${this.name}`);
    if (!(await fs.stat(path.join(this.path, MANIFEST_FILE)).catch(() => undefined))?.isFile()) {
      throw new MissingFileError(
        MANIFEST_FILE,
        `backup ${this.dir}/${this.name} (a record goes beside a complete backup)`,
      );
    }
    await this.#write(name, () => Readable.from([Buffer.from(text)]));
    await syncFiles([path.join(this.path, name)]);
  }

  async abortBackup(): Promise<void> {
    try {
      await fs.rm(this.path, { recursive: true, force: true });
    } catch (error) {
      throw storageError('remove', this.path, error);
    }
  }

  #checkWritable(name: string): void {
    if (!this.#writable)
      throw new StorageError(`backup ${this.dir}/${this.name} was not started by this handle`);
    if (name === MANIFEST_FILE) throw new StorageError('the MANIFEST is written by endBackup, last');
  }

  /**
   * Writes to a dot-name, then renames: a killed writer never leaves a half file under its final
   * name. The data reaches the disk in endBackup, before the MANIFEST (a power cut before it leaves
   * an incomplete backup, never a complete one with half files).
   */
  async #write(name: string, source: FileSource, signal?: AbortSignal): Promise<StoredFile> {
    const final = path.join(this.path, name);
    const partial = path.join(this.path, `${partialPrefix}${name}.${randomBytes(4).toString('hex')}`);
    const hasher = new HashingStream();
    const output = createWriteStream(partial, { highWaterMark: 256 * 1024 });
    try {
      const input = await source();
      await pipeline(input, hasher, output, ...(signal ? [{ signal }] : []));
      await fs.rename(partial, final);
      this.#written.add(final);
    } catch (error) {
      output.destroy();
      await fs.rm(partial, { force: true }).catch(() => {});
      // Only failures of the file being written are storage errors; a failing source keeps its own.
      if (output.errored === error || (error as NodeJS.ErrnoException).syscall === 'rename') {
        throw storageError('write', final, error);
      }
      throw error;
    }
    return { name, size: hasher.bytes, sha256: hasher.digest() };
  }
}
