import {
  type BackupChoice,
  type BackupSummary,
  type ChosenBackup,
  chooseBackup,
  inspectBackup,
  listShardBackups,
} from './backups.ts';
import { NoBackupError } from './errors.ts';
import { KeyRange } from './keyrange.ts';
import type { Logger } from './log.ts';
import {
  isLegacySnapshotRange,
  legacySnapshotDir,
  parseSnapshotAddress,
  SNAPSHOT_NAMESPACE,
  snapshotAddress,
  snapshotDir,
} from './storage/layout.ts';
import type { BackupHandle, BackupStorage } from './storage/types.ts';
import { mapConcurrent } from './stream/concurrency.ts';

/**
 * Logical snapshots by address (`shop/0/-80`): found in the snapshot namespace, and in the place
 * older releases wrote them (inside the source shard's directory), so their storage still loads.
 */

/**
 * The snapshot of an address to load: the newest complete one (or the named one), looked for in
 * the snapshot namespace first, then where older releases wrote it. Snapshots are found by engine:
 * the older place of a full range is the shard's own directory, which holds its physical backups too.
 */
export async function chooseSnapshot(
  storage: BackupStorage,
  address: string,
  choice: Pick<BackupChoice, 'name'>,
  logger: Logger,
): Promise<ChosenBackup & { address: string }> {
  const places = [snapshotDir(address), legacySnapshotDir(address)];
  const skipped: ChosenBackup['skipped'] = [];
  for (const dir of places) {
    try {
      const chosen = await chooseBackup(storage, dir, { name: choice.name, engine: 'logical' }, logger);
      if (dir !== places[0])
        logger.info(
          `snapshot ${address}@${chosen.handle.name} is in ${dir}, where older releases wrote snapshots`,
        );
      return { ...chosen, skipped: [...skipped, ...chosen.skipped], address };
    } catch (error) {
      if (!(error instanceof NoBackupError)) throw error;
    }
  }
  const what = choice.name ? `snapshot ${address}@${choice.name}` : `no complete snapshot of ${address}`;
  throw new NoBackupError(
    address,
    `${choice.name ? `${what} does not exist or is not complete` : what} (looked in ${places.join(' and ')} of ${storage.url})`,
    {
      hint: `list the snapshots with: stepback backups list --snapshots --storage ${storage.url} --dir ${sourceOf(address)}`,
    },
  );
}

/**
 * A handle on a named snapshot for reading: in the snapshot namespace, or where older releases
 * wrote it when only that place holds it.
 */
export async function openSnapshot(
  storage: BackupStorage,
  address: string,
  name: string,
): Promise<BackupHandle> {
  const handle = storage.openBackup(snapshotDir(address), name);
  if ((await handle.listFiles()).length > 0) return handle;
  const legacy = storage.openBackup(legacySnapshotDir(address), name);
  return (await legacy.listFiles()).length > 0 ? legacy : handle;
}

/** One snapshot as `backups list --snapshots` shows it. */
export type SnapshotSummary = BackupSummary & {
  /** `shop/0/-80`: what `multirestore --sources` takes (with `@name`). */
  address: string;
  keyRange: string;
  /** Written by an older release inside the shard's own directory. */
  legacy: boolean;
};

/**
 * Every snapshot of a source (`<keyspace>/<source>`), every range, oldest first within a range:
 * those in the snapshot namespace and those older releases left in the shard's directory.
 */
export async function inspectSnapshots(
  storage: BackupStorage,
  source: string,
  concurrency = 16,
): Promise<SnapshotSummary[]> {
  parseSnapshotAddress(source);
  const found: { handle: BackupHandle; range: KeyRange; legacy: boolean }[] = [];
  const ranges = await storage.listDirectories(`${SNAPSHOT_NAMESPACE}/${source}`);
  for (const range of ranges.flatMap((text) => parseRange(text))) {
    for (const handle of await storage.listBackups(snapshotDir(snapshotAddress(source, range)))) {
      found.push({ handle, range, legacy: false });
    }
  }
  for (const text of (await storage.listDirectories(source)).filter(isLegacySnapshotRange)) {
    for (const range of parseRange(text)) {
      for (const handle of await storage.listBackups(`${source}/${text}`))
        found.push({ handle, range, legacy: true });
    }
  }
  const summaries = await mapConcurrent(found, concurrency, async ({ handle, range, legacy }) => ({
    ...(await inspectBackup(handle)),
    address: snapshotAddress(source, range),
    keyRange: range.toString(),
    legacy,
  }));
  // The full range of an older release sits among the shard's physical backups: only its logical ones.
  const legacyFull = await mapConcurrent(await listShardBackups(storage, source), concurrency, (handle) =>
    inspectBackup(handle),
  );
  for (const summary of legacyFull) {
    if (summary.complete && summary.manifest.engine === 'logical') {
      summaries.push({ ...summary, address: source, keyRange: KeyRange.full().toString(), legacy: true });
    }
  }
  return summaries.sort(
    (a, b) =>
      a.keyRange.localeCompare(b.keyRange) ||
      a.name.localeCompare(b.name) ||
      Number(a.legacy) - Number(b.legacy),
  );
}

function parseRange(text: string): KeyRange[] {
  try {
    return [KeyRange.parse(text)];
  } catch {
    return [];
  }
}

/** `shop/0/-80` → `shop/0`. */
function sourceOf(address: string): string {
  return address.split('/').slice(0, 2).join('/');
}
