import type { Readable } from 'node:stream';
import type { BackupManifest } from '../manifest.ts';

/**
 * Where backup bytes go. An engine never knows whether that is S3 or a directory.
 *
 * Layout: `<root>/<dir>/<name>/<file>`, where `dir` is `keyspace/shard` and `name` sorts by time.
 * A backup is complete iff its MANIFEST exists and parses; `endBackup` writes it last.
 */
export interface BackupStorage {
  /** The storage URL, for messages (never holds credentials). */
  readonly url: string;
  /** Every backup in `dir`, complete or not, oldest first. */
  listBackups(dir: string): Promise<BackupHandle[]>;
  /**
   * The names of the directories directly under `dir` (each a safe path segment), sorted; what a
   * listing of snapshot key ranges needs, since a range (`-80`) is not a backup name. `''` lists
   * the root (the keyspaces, and the snapshot namespace).
   */
  listDirectories(dir: string): Promise<string[]>;
  /** A handle on one named backup, for reading; it may not exist. */
  openBackup(dir: string, name: string): BackupHandle;
  /** Starts a new backup; refuses a name that already exists. */
  startBackup(dir: string, name: string): Promise<BackupHandle>;
  /** Deletes every object of a backup. */
  removeBackup(dir: string, name: string): Promise<void>;
  close(): Promise<void>;
}

/** Produces the bytes of one file. Called again for the single whole-file retry, so it must start over. */
export type FileSource = () => Readable | Promise<Readable>;

export interface WriteFileOptions {
  /** Expected stored size when known (raw size is an upper bound for compressed data): picks the part size. */
  sizeHint?: number;
  /** Whether `source` may be called a second time. Default true. */
  replayable?: boolean;
  signal?: AbortSignal;
}

/** What storage holds for one written file. */
export interface StoredFile {
  name: string;
  /** Bytes stored. */
  size: number;
  /** SHA-256 of the stored bytes, computed while they were written (recomputed on a retry). */
  sha256: string;
}

export interface ListedFile {
  name: string;
  size: number;
}

export interface BackupHandle {
  readonly dir: string;
  readonly name: string;
  /** Streams `source()` into file `name`, hashing what is stored. Only on a handle from startBackup. */
  writeFile(name: string, source: FileSource, options?: WriteFileOptions): Promise<StoredFile>;
  /** A stream of the stored bytes; rejects with MissingFileError when the file does not exist. */
  readFile(name: string, options?: { signal?: AbortSignal }): Promise<Readable>;
  /** Every stored file with its size (temporary and in-progress files excluded). */
  listFiles(): Promise<ListedFile[]>;
  /** Writes the MANIFEST (validated), which makes the backup complete. */
  endBackup(manifest: BackupManifest): Promise<void>;
  /** Removes everything this backup wrote. */
  abortBackup(): Promise<void>;
  /**
   * Adds (or replaces) a small record beside a complete backup — the only write a backup takes
   * after its MANIFEST, which it never changes: `DRILL.json`, a drill's outcome. Works on any handle.
   */
  writeRecord(name: BackupRecordName, text: string): Promise<void>;
}

/** The records a complete backup may take beside its MANIFEST. */
export type BackupRecordName = 'DRILL.json';
