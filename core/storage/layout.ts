import { UsageError } from '../errors.ts';
import { KeyRange } from '../keyrange.ts';
import { BackupDir, isSafeSegment } from '../paths.ts';

/**
 * Where each kind of backup lives under a storage root. Physical backups are `<keyspace>/<shard>/<name>/`;
 * logical snapshots have a namespace of their own, `snapshots/<keyspace>/<source>/<range>/<name>/`,
 * so no listing, restore or prune of a shard's backups ever sees them; archived binary logs have
 * another, `binlogs/<keyspace>/<shard>/<entry>/`.
 */

/** The first segment of every snapshot's directory. */
export const SNAPSHOT_NAMESPACE = 'snapshots';

/**
 * The first segment of every binlog archive: `binlogs/<keyspace>/<shard>/<entry>/`, one entry per
 * archived binary log file (see core/binlogs/manifest.ts). Outside every shard's backup directory,
 * so no backup or snapshot listing, restore or prune ever sees it.
 */
export const BINLOG_NAMESPACE = 'binlogs';

/** Where the binary logs of a shard (`<keyspace>/<shard>`) are archived. */
export function binlogArchiveDir(shardDir: string): string {
  return `${BINLOG_NAMESPACE}/${shardDir}`;
}

/**
 * A snapshot as operators and the state machines name it: `<keyspace>/<source>` for the full range,
 * `<keyspace>/<source>/<range>` for one range of a split (`shop/0/-80`). What `snapshot --json`
 * prints as `dir` and what `multirestore --sources` takes.
 */
export interface SnapshotAddress {
  keyspace: string;
  source: string;
  range: KeyRange;
}

export function parseSnapshotAddress(address: string): SnapshotAddress {
  const segments = address.split('/');
  const [keyspace = '', source = '', range] = segments;
  if (segments.length < 2 || segments.length > 3 || !segments.every(isSafeSegment)) {
    throw new UsageError(
      `snapshot ${JSON.stringify(address)} is not KEYSPACE/SOURCE or KEYSPACE/SOURCE/RANGE`,
      { hint: 'e.g. shop/0 (the full range of shard 0) or shop/0/-80 (one range of its split)' },
    );
  }
  return { keyspace, source, range: range === undefined ? KeyRange.full() : KeyRange.parse(range) };
}

/** The address of one range of a source: the full range is `<keyspace>/<source>` itself. */
export function snapshotAddress(source: string, range: KeyRange): string {
  return range.isFull() ? source : `${source}/${range.toString()}`;
}

/**
 * The storage directory of a snapshot address: `snapshots/<keyspace>/<source>/<range>`, the full
 * range spelled `-`. The one place that says where a snapshot lives.
 */
export function snapshotDir(address: string): string {
  const { keyspace, source, range } = parseSnapshotAddress(address);
  return [SNAPSHOT_NAMESPACE, keyspace, source, range.toString()].join('/');
}

/**
 * Where releases before the snapshot namespace wrote the same address: inside the source shard's
 * own backup directory (`<keyspace>/<source>/<range>`, the full range in `<keyspace>/<source>`).
 * Only read, so such storage still loads; never written.
 */
export function legacySnapshotDir(address: string): string {
  const { keyspace, source, range } = parseSnapshotAddress(address);
  return snapshotAddress(`${keyspace}/${source}`, range);
}

/**
 * Whether an entry of a shard's backup directory is a range directory of an older release's
 * snapshot (`-80`, `40-80`, `80-`) rather than a backup: backup names never have that shape.
 */
export function isLegacySnapshotRange(name: string): boolean {
  return /^(?:[0-9a-f]{2}){0,32}-(?:[0-9a-f]{2}){0,32}$/i.test(name);
}

/**
 * Checks a physical backup directory: `<keyspace>/<shard>` (a keyspace alone is refused, naming the
 * missing shard), outside the snapshot namespace.
 */
export function checkShardDir(dir: string): string | undefined {
  const segments = dir.split('/');
  if (segments.length === 1) {
    return `names keyspace ${JSON.stringify(segments[0])} but no shard: give KEYSPACE/SHARD, e.g. ${segments[0]}/0 or ${segments[0]}/-80`;
  }
  if (segments[0] === SNAPSHOT_NAMESPACE) {
    return `is inside ${SNAPSHOT_NAMESPACE}/, where logical snapshots live, not a shard's backups (list those with backups list --snapshots)`;
  }
  if (segments[0] === BINLOG_NAMESPACE) {
    return `is inside ${BINLOG_NAMESPACE}/, where binary logs are archived, not a shard's backups (list those with binlogs list --dir KEYSPACE/SHARD)`;
  }
  return undefined;
}

/** A `--dir`/`dir` that names a shard's physical backups (see `checkShardDir`). */
export const ShardDir = BackupDir.superRefine((dir, ctx) => {
  const problem = checkShardDir(dir);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
