import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DiskFullError, diskFullError, freeBytes, isDiskFull } from '../../../core/disk-space.ts';
import { HashMismatchError, ManifestError, messageOf, VerificationError } from '../../../core/errors.ts';
import type { Logger } from '../../../core/log.ts';
import type { FileBase, PhysicalFile, PhysicalManifest } from '../../../core/manifest.ts';
import { resolveUnder } from '../../../core/paths.ts';
import type { BackupHandle } from '../../../core/storage/types.ts';
import { createDecompressor } from '../../../core/stream/compress.ts';
import { mapConcurrent } from '../../../core/stream/concurrency.ts';
import { CountingStream } from '../../../core/stream/hash.ts';
import { syncFiles } from '../../../core/stream/sync.ts';
import { VerifyingStream } from '../../../core/stream/verify.ts';
import { type DataLayout, refusedPath } from './layout.ts';
import type { RestoreArea } from './swap.ts';

/** One manifest entry with where it is staged and where it finally goes. */
export interface PlannedFile {
  file: PhysicalFile;
  /** The top-level entry of its base that holds it (moved in as a whole). */
  top: string;
  staged: string;
  destination: string;
}

/**
 * Checks every manifest entry against the target's layout — inside its base directory, and a data
 * file by the same rules a backup selects by — and says where each is staged. ManifestError names
 * the first entry refused; nothing has been written then.
 */
export function planRestoreFiles(
  layout: DataLayout,
  area: RestoreArea,
  manifest: PhysicalManifest,
): PlannedFile[] {
  const destinations = new Set<string>();
  const planned = manifest.files.map((file) => {
    const where = `${file.base}:${file.path}`;
    const destination = resolveUnder(layout.baseDirs[file.base], file.path);
    const reason = refusedPath(layout, file.base, file.path);
    if (reason) {
      throw new ManifestError(
        `file ${file.name} (${where}) ${reason}; refusing to restore it`,
        manifest.name,
      );
    }
    if (destinations.has(destination)) {
      throw new ManifestError(`two entries restore to ${destination}`, manifest.name);
    }
    destinations.add(destination);
    return {
      file,
      top: file.path.split('/')[0]!,
      staged: resolveUnder(area.stagedRoot(file.base), file.path),
      destination,
    };
  });
  const tablespaces = new Set(manifest.files.filter((f) => f.base === 'innodb-data').map((f) => f.path));
  const missing = [...layout.systemTablespaces].filter((name) => !tablespaces.has(name));
  if (missing.length > 0 || tablespaces.size === 0) {
    throw new ManifestError(
      `the backup's system tablespace (${[...tablespaces].join(', ') || 'none'}) does not match innodb_data_file_path of this instance (${[...layout.systemTablespaces].join(', ')})`,
      manifest.name,
    );
  }
  return planned;
}

/** The owner new files get: the owner of the datadir, when the agent runs as root (mysqld does not). */
export async function ownerOf(dir: string): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const stats = await fs.stat(dir);
  return stats.uid === 0 && stats.gid === 0 ? undefined : { uid: stats.uid, gid: stats.gid };
}

export interface StageOptions {
  concurrency: number;
  signal: AbortSignal;
  logger: Logger;
  /** Raw bytes written so far (may be called with a negative delta when a file starts over). */
  onBytes: (delta: number) => void;
  onFileDone: () => void;
}

/**
 * Downloads, verifies (before decompressing: a corrupt file is named as corrupt) and decompresses
 * every planned file into the staging area, `concurrency` at a time; the first failure cancels the
 * others. The caller removes the staging area on failure.
 */
export async function stageFiles(
  handle: BackupHandle,
  manifest: PhysicalManifest,
  planned: readonly PlannedFile[],
  area: RestoreArea,
  layout: DataLayout,
  options: StageOptions,
): Promise<void> {
  const needed = planned.reduce((sum, entry) => sum + entry.file.rawSize, 0);
  for (const dir of area.holding) await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const stagingDir = area.holding[0]!;
  const available = await freeBytes(stagingDir);
  if (available !== undefined && needed > available) {
    throw new DiskFullError(
      `restoring ${manifest.name} stages its files beside the datadir`,
      { dir: stagingDir, neededBytes: needed, freeBytes: available },
      { hint: 'free space on the datadir filesystem (the old files stay until the restore is complete)' },
    );
  }
  const owner = await ownerOf(layout.datadir);
  const created = new Set<string>();
  const makeDirectory = async (dir: string) => {
    if (created.has(dir)) return;
    const first = await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    if (owner && first) {
      for (let current = dir; current.startsWith(first); current = path.dirname(current)) {
        await fs.chown(current, owner.uid, owner.gid);
      }
    }
    created.add(dir);
  };
  // Biggest first: the long files start early and the small ones fill in around them.
  const order = [...planned].sort((a, b) => b.file.rawSize - a.file.rawSize);
  await mapConcurrent(
    order,
    options.concurrency,
    async (entry, _index, signal) => {
      await makeDirectory(path.dirname(entry.staged));
      await stageFile(handle, manifest, entry, signal, options.onBytes, { dir: stagingDir, needed });
      if (owner) await fs.chown(entry.staged, owner.uid, owner.gid);
      options.onFileDone();
    },
    { signal: options.signal, logger: options.logger },
  );
  // Durable before the swap deletes anything: one batch of fsyncs rather than one per file.
  await syncFiles(
    planned.map((entry) => entry.staged),
    { signal: options.signal },
  );
}

async function stageFile(
  handle: BackupHandle,
  manifest: PhysicalManifest,
  entry: PlannedFile,
  signal: AbortSignal,
  onBytes: (delta: number) => void,
  space: { dir: string; needed: number },
): Promise<void> {
  const { file } = entry;
  const where = `${file.name} (${file.base}:${file.path})`;
  const source = await handle.readFile(file.name, { signal });
  const decompressor = createDecompressor(manifest.compression, { chunkSize: 1024 * 1024 });
  const counter = new CountingStream(onBytes);
  const output = createWriteStream(entry.staged, { mode: 0o660, highWaterMark: 1024 * 1024 });
  try {
    await pipeline(source, new VerifyingStream(file), decompressor, counter, output, { signal });
  } catch (error) {
    onBytes(-counter.bytes);
    if (error instanceof HashMismatchError || signal.aborted) throw error;
    // First: a write error reaches the decompressor too, and a full disk is not a corrupt file.
    if (isDiskFull(error)) {
      throw await diskFullError(`staging ${where}`, space.dir, space.needed, {
        cause: error,
        hint: 'free space on the datadir filesystem; the instance was not changed',
      });
    }
    if (decompressor.errored === error) {
      throw new VerificationError(`file ${where} is corrupt: it does not decompress (${messageOf(error)})`, {
        cause: error,
      });
    }
    throw error;
  }
  if (counter.bytes !== file.rawSize) {
    throw new VerificationError(
      `file ${where} decompressed to ${counter.bytes} bytes, the manifest says ${file.rawSize}`,
    );
  }
}

/** The distinct top-level entries the planned files fill, per base. */
export function stagedTops(planned: readonly PlannedFile[]): { base: FileBase; top: string }[] {
  const seen = new Map<string, { base: FileBase; top: string }>();
  for (const entry of planned)
    seen.set(`${entry.file.base}:${entry.top}`, { base: entry.file.base, top: entry.top });
  return [...seen.values()];
}
