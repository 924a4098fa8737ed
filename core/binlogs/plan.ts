import { PointNotCoveredError } from '../errors.ts';
import type { FlavorName } from '../gtid.ts';
import type { BackupManifest } from '../manifest.ts';
import { type BinlogArchive, type CompleteBinlog, gapBetween } from './catalog.ts';
import { parseGtidSet } from './gtids.ts';

/**
 * Which archived binary logs carry a restored backup to a point: a time (the last transaction
 * committed at or before it) or a GTID (exactly up to and including it). Pure: the archive, the
 * backup and the point in, the files out, or a refusal that says what the archive covers.
 */

export type RestorePoint = { time: Date } | { gtid: string };

export function describePoint(point: RestorePoint): string {
  return 'time' in point ? point.time.toISOString() : `GTID ${point.gtid}`;
}

/** Why a backup cannot start a restore to `point` (it is from after it), or undefined when it can. */
export function backupAfterPoint(manifest: BackupManifest, point: RestorePoint): string | undefined {
  if ('time' in point) {
    return new Date(manifest.finishedAt) > point.time
      ? `finished after ${point.time.toISOString()}`
      : undefined;
  }
  return parseGtidSet(manifest.flavor, manifest.position).has(point.gtid)
    ? `already holds ${point.gtid}`
    : undefined;
}

/** What the archive covers, for refusals: `2026-12-01T14:00:00Z to 2026-12-01T15:00:00Z (GTIDs … to …)`. */
export function describeCoverage(archive: BinlogArchive): string {
  if (archive.ranges.length === 0) return `the archive ${archive.dir} holds no complete binary log`;
  return `the archive ${archive.dir} covers ${archive.ranges
    .map(
      (range) =>
        `${range.fromTime} to ${range.toTime} (GTIDs ${range.gtidsFrom || '(empty)'} to ${range.gtidsTo || '(empty)'})`,
    )
    .join(
      ', and ',
    )}${archive.gaps.length > 0 ? ` with ${archive.gaps.length} gap(s): ${archive.gaps.map((gap) => gap.problem).join('; ')}` : ''}`;
}

/** Whether a file holds transactions at or before `point`'s end (so the point lies in or before it). */
function reaches(file: CompleteBinlog, flavor: FlavorName, point: RestorePoint): boolean {
  // A file whose last event is at T may be followed by one opened at T holding transactions of T.
  if ('time' in point) return new Date(file.manifest.lastEventTime).getTime() > point.time.getTime();
  return parseGtidSet(flavor, file.manifest.gtidsAfter).has(point.gtid);
}

/**
 * The archived files from the first one holding a transaction the backup lacks up to the one the
 * point falls in, consecutive and without a gap; PointNotCoveredError naming what is covered when
 * the archive cannot reach the point from this backup.
 */
export function planBinlogs(
  archive: BinlogArchive,
  backup: Pick<BackupManifest, 'name' | 'flavor' | 'position'>,
  point: RestorePoint,
): CompleteBinlog[] {
  const refuse = (why: string) =>
    new PointNotCoveredError(
      `cannot restore to ${describePoint(point)} from backup ${backup.name}: ${why}; ${describeCoverage(archive)}`,
      {
        hint: 'choose a point the archive covers, or archive the binary logs that hold it (stepback binlogs archive)',
      },
    );
  const complete = archive.entries.filter(
    (entry): entry is CompleteBinlog => entry.complete && entry.manifest.flavor === backup.flavor,
  );
  const position = parseGtidSet(backup.flavor, backup.position);
  const start = complete.findIndex(
    (entry) => !position.covers(parseGtidSet(backup.flavor, entry.manifest.gtidsAfter)),
  );
  if (start === -1) {
    // Nothing archived is newer than the backup: it is the point itself only if the archive shows
    // that no transaction happened between the backup and the point.
    const last = complete.at(-1);
    if (last && 'time' in point && reaches(last, backup.flavor, point)) return [];
    throw refuse('no archived binary log holds a transaction after the backup');
  }
  const first = complete[start]!;
  const missing = position.missingFrom(parseGtidSet(backup.flavor, first.manifest.gtidsBefore));
  if (missing) {
    throw refuse(`transactions ${missing} between the backup and ${first.entry} are in no archived file`);
  }
  const needed: CompleteBinlog[] = [];
  for (let index = start; index < complete.length; index++) {
    const entry = complete[index]!;
    const previous = needed.at(-1);
    const gap = previous ? gapBetween(previous.manifest, entry.manifest) : undefined;
    if (gap) throw refuse(`the archive has a gap after ${gap.after}: ${gap.problem}`);
    needed.push(entry);
    if (reaches(entry, backup.flavor, point)) return needed;
  }
  throw refuse(
    `the archive ends at ${complete.at(-1)?.manifest.lastEventTime} (${complete.at(-1)?.entry}) before the point`,
  );
}
