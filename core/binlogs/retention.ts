import { readManifest } from '../backups.ts';
import { ManifestError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { BackupManifest } from '../manifest.ts';
import type { BackupStorage } from '../storage/types.ts';
import { type BinlogArchive, readBinlogArchive } from './catalog.ts';
import { parseGtidSet } from './gtids.ts';

/**
 * Retention of a shard's binlog archive, applied with its backups': every file needed to reach any
 * point after the oldest backup kept stays, and so does anything stepback cannot place; the files
 * whose every transaction the oldest kept backup already holds go.
 */

export interface BinlogPrunePlan {
  remove: { entry: string; reason: string }[];
  keep: number;
}

const DAY = 24 * 60 * 60 * 1000;

/** `2026-12-01.140312.…` → its time, as binlogEntryName wrote it. */
function entryTime(entry: string): Date | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})\.(\d{2})(\d{2})(\d{2})\./.exec(entry);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s] = match.map(Number) as number[];
  return new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!));
}

/** Pure: the archive and the oldest backup kept in, what goes out. */
export function planBinlogPrune(
  archive: BinlogArchive,
  oldestKept: Pick<BackupManifest, 'name' | 'flavor' | 'position'>,
  now: Date,
): BinlogPrunePlan {
  const plan: BinlogPrunePlan = { remove: [], keep: 0 };
  const position = parseGtidSet(oldestKept.flavor, oldestKept.position);
  // Only files before the first one the oldest kept backup needs: never one after a file it needs.
  let needed = false;
  for (const entry of archive.entries) {
    if (!entry.complete) {
      const time = entryTime(entry.entry);
      if (time && now.getTime() - time.getTime() > DAY) {
        plan.remove.push({
          entry: entry.entry,
          reason: `incomplete and older than a day (${entry.problem})`,
        });
      } else {
        plan.keep++;
      }
      continue;
    }
    const { manifest } = entry;
    needed ||=
      manifest.flavor !== oldestKept.flavor ||
      !position.covers(parseGtidSet(manifest.flavor, manifest.gtidsAfter));
    if (needed) {
      plan.keep++;
    } else {
      plan.remove.push({
        entry: entry.entry,
        reason: `every transaction in it (up to ${manifest.gtidsAfter || '(none)'}) is in the oldest backup kept, ${oldestKept.name}`,
      });
    }
  }
  return plan;
}

/**
 * Applies planBinlogPrune after a prune of the shard's backups (`kept`: the names it kept, oldest
 * first). Without a complete physical backup kept, nothing is removed.
 */
export async function pruneBinlogs(
  storage: BackupStorage,
  dir: string,
  kept: readonly string[],
  options: { dryRun?: boolean; now?: Date; logger: Logger },
): Promise<BinlogPrunePlan & { dryRun: boolean }> {
  let oldest: BackupManifest | undefined;
  for (const name of kept) {
    try {
      const manifest = await readManifest(storage.openBackup(dir, name));
      if (manifest.engine === 'physical') {
        oldest = manifest;
        break;
      }
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
    }
  }
  const archive = await readBinlogArchive(storage, dir);
  if (!oldest) return { remove: [], keep: archive.entries.length, dryRun: Boolean(options.dryRun) };
  const plan = planBinlogPrune(archive, oldest, options.now ?? new Date());
  if (!options.dryRun) {
    for (const { entry, reason } of plan.remove) {
      options.logger.info(`removing archived binlog ${archive.dir}/${entry}: ${reason}`);
      await storage.removeBackup(archive.dir, entry);
    }
  }
  return { ...plan, dryRun: Boolean(options.dryRun) };
}
