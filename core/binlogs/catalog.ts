import { ManifestError, MissingFileError, messageOf } from '../errors.ts';
import { binlogArchiveDir } from '../storage/layout.ts';
import type { BackupHandle, BackupStorage } from '../storage/types.ts';
import { mapConcurrent } from '../stream/concurrency.ts';
import { parseGtidSet } from './gtids.ts';
import { BINLOG_MANIFEST_FILE, type BinlogManifest, parseBinlogManifest } from './manifest.ts';

/**
 * What a shard's binlog archive holds: its entries in the order the server wrote them, the gaps
 * between them, and the stretches of time and GTIDs it covers without a gap.
 */

const MAX_MANIFEST_BYTES = 1024 * 1024;

export type ArchivedBinlog =
  | { entry: string; complete: true; manifest: BinlogManifest; handle: BackupHandle }
  | { entry: string; complete: false; problem: string; handle: BackupHandle };

export type CompleteBinlog = Extract<ArchivedBinlog, { complete: true }>;

/** Something missing between two consecutive archived files. */
export interface ArchiveGap {
  /** The entry after which something is missing… */
  after: string;
  /** …and the entry before which it ends. */
  before: string;
  /** Files of the server's numbering that are not archived (`mysql-bin.000043`…). */
  missingFiles: string[];
  /** Transactions in no archived file (the GTIDs the later file's start holds and the earlier's end not). */
  missingGtids: string;
  /** What an operator reads. */
  problem: string;
}

/** A stretch the archive covers without a gap: any point in it can be restored to, given a backup. */
export interface ArchiveRange {
  first: string;
  last: string;
  files: number;
  fromTime: string;
  toTime: string;
  gtidsFrom: string;
  gtidsTo: string;
}

export interface BinlogArchive {
  dir: string;
  entries: ArchivedBinlog[];
  gaps: ArchiveGap[];
  ranges: ArchiveRange[];
}

export async function readBinlogManifest(handle: BackupHandle): Promise<BinlogManifest> {
  let stream: NodeJS.ReadableStream;
  try {
    stream = await handle.readFile(BINLOG_MANIFEST_FILE);
  } catch (error) {
    if (error instanceof MissingFileError) {
      throw new ManifestError(
        `archived binlog ${handle.name} has no ${BINLOG_MANIFEST_FILE} (incomplete)`,
        undefined,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_MANIFEST_BYTES) {
      throw new ManifestError(`archived binlog ${handle.name}: ${BINLOG_MANIFEST_FILE} is larger than 1 MiB`);
    }
    chunks.push(chunk);
  }
  return parseBinlogManifest(Buffer.concat(chunks).toString('utf8'), handle.name);
}

/** `mysql-bin.000042` → `['mysql-bin', 42, 6]` (base, number, digits). */
function numbering(file: string): [string, number, number] {
  const at = file.lastIndexOf('.');
  const digits = file.slice(at + 1);
  return [file.slice(0, at), Number(digits), digits.length];
}

/** What is missing between two consecutive archived files, or undefined when nothing is. */
export function gapBetween(earlier: BinlogManifest, later: BinlogManifest): ArchiveGap | undefined {
  const [base, number, digits] = numbering(earlier.file);
  const [laterBase, laterNumber] = numbering(later.file);
  const missingFiles: string[] = [];
  if (base === laterBase && earlier.serverId === later.serverId && laterNumber > number + 1) {
    for (let n = number + 1; n < laterNumber && missingFiles.length < 1000; n++) {
      missingFiles.push(`${base}.${String(n).padStart(digits, '0')}`);
    }
  }
  const missingGtids =
    earlier.flavor === later.flavor
      ? parseGtidSet(earlier.flavor, earlier.gtidsAfter).missingFrom(
          parseGtidSet(later.flavor, later.gtidsBefore),
        )
      : '';
  if (missingFiles.length === 0 && missingGtids === '') return undefined;
  const parts = [
    ...(missingFiles.length > 0
      ? [
          `${missingFiles.length} file(s) not archived (${missingFiles.slice(0, 3).join(', ')}${missingFiles.length > 3 ? ', …' : ''})`,
        ]
      : []),
    ...(missingGtids ? [`transactions ${missingGtids} are in no archived file`] : []),
  ];
  return { after: earlier.entry, before: later.entry, missingFiles, missingGtids, problem: parts.join('; ') };
}

/** Every entry of a shard's archive with its manifest read, the gaps and the covered ranges. */
export async function readBinlogArchive(storage: BackupStorage, shardDir: string): Promise<BinlogArchive> {
  const dir = binlogArchiveDir(shardDir);
  const handles = await storage.listBackups(dir);
  const entries = await mapConcurrent(handles, 16, async (handle): Promise<ArchivedBinlog> => {
    try {
      return { entry: handle.name, complete: true, manifest: await readBinlogManifest(handle), handle };
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
      return { entry: handle.name, complete: false, problem: messageOf(error), handle };
    }
  });
  const complete = entries.filter((entry): entry is CompleteBinlog => entry.complete);
  const gaps: ArchiveGap[] = [];
  const ranges: ArchiveRange[] = [];
  let run: CompleteBinlog[] = [];
  const close = () => {
    const first = run[0];
    const last = run.at(-1);
    if (!first || !last) return;
    ranges.push({
      first: first.entry,
      last: last.entry,
      files: run.length,
      fromTime: first.manifest.firstEventTime,
      toTime: last.manifest.lastEventTime,
      gtidsFrom: first.manifest.gtidsBefore,
      gtidsTo: last.manifest.gtidsAfter,
    });
  };
  for (const entry of complete) {
    const previous = run.at(-1);
    const gap = previous ? gapBetween(previous.manifest, entry.manifest) : undefined;
    if (gap) {
      gaps.push(gap);
      close();
      run = [];
    }
    run.push(entry);
  }
  close();
  return { dir, entries, gaps, ranges };
}

/**
 * The gaps that a restore to a point from a backup at `position` could need to cross: those whose
 * later file holds transactions the backup lacks. Older gaps no longer matter to that backup.
 */
export function gapsAfter(
  archive: BinlogArchive,
  flavor: BinlogManifest['flavor'],
  position: string,
): ArchiveGap[] {
  const held = parseGtidSet(flavor, position);
  const byEntry = new Map(archive.entries.map((entry) => [entry.entry, entry]));
  return archive.gaps.filter((gap) => {
    const later = byEntry.get(gap.before);
    return (
      later?.complete === true &&
      (later.manifest.flavor !== flavor || !held.covers(parseGtidSet(flavor, later.manifest.gtidsAfter)))
    );
  });
}
