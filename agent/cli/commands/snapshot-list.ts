import { inspectSnapshots, type SnapshotSummary } from '../../../core/snapshots.ts';
import { SNAPSHOT_NAMESPACE } from '../../../core/storage/layout.ts';
import type { BackupStorage } from '../../../core/storage/types.ts';
import { formatBytes, formatCount, renderTable } from '../../report/format.ts';
import type { CommandOutcome } from '../command.ts';

/** One row of `backups list --snapshots --json`. */
export interface SnapshotListEntry {
  /** `shop/0/-80@<name>` is a `multirestore --sources` entry. */
  dir: string;
  name: string;
  keyRange: string;
  complete: boolean;
  time?: string;
  rows?: number;
  bytes?: { raw: number; stored: number };
  position?: string;
  problem?: string;
  /** Written by an older release inside the shard's own backup directory. */
  legacy: boolean;
}

function snapshotEntry(summary: SnapshotSummary): SnapshotListEntry {
  const base = {
    dir: summary.address,
    name: summary.name,
    keyRange: summary.keyRange,
    legacy: summary.legacy,
  };
  if (!summary.complete) return { ...base, complete: false, problem: summary.problem };
  const { manifest } = summary;
  const rows = manifest.engine === 'logical' ? manifest.files.reduce((sum, file) => sum + file.rows, 0) : 0;
  return {
    ...base,
    complete: true,
    time: manifest.finishedAt,
    rows,
    bytes: manifest.bytes,
    position: manifest.position,
  };
}

export function renderSnapshotList(entries: SnapshotListEntry[], source: string): string {
  if (entries.length === 0) return `no snapshots of ${source}`;
  const table = renderTable(
    ['KEY RANGE', 'SOURCE ENTRY', 'FINISHED (UTC)', 'ROWS', 'STORED', 'POSITION', 'STATE'],
    entries.map((e) => [
      e.keyRange,
      `${e.dir}@${e.name}`,
      e.time ? e.time.replace('T', ' ').replace(/(\.\d+)?Z$/, '') : '-',
      e.rows === undefined ? '-' : formatCount(e.rows),
      e.bytes ? formatBytes(e.bytes.stored) : '-',
      e.position || '-',
      `${e.complete ? 'complete' : 'INCOMPLETE'}${e.legacy ? ' (older layout)' : ''}`,
    ]),
  );
  const lines = [
    table,
    '',
    `${entries.length} snapshot(s) of ${source}; load one with multirestore --sources SOURCE-ENTRY`,
  ];
  for (const e of entries.filter((entry) => !entry.complete))
    lines.push(`  ${e.dir}@${e.name}: ${e.problem}`);
  if (entries.some((e) => e.legacy)) {
    lines.push(
      `(older layout): written inside the shard's backup directory by an older release; newer snapshots live under ${SNAPSHOT_NAMESPACE}/ and both load the same way`,
    );
  }
  return lines.join('\n');
}

/** `backups list --snapshots`: the snapshots of a source, every range. */
export async function listSnapshots(storage: BackupStorage, source: string): Promise<CommandOutcome> {
  const entries = (await inspectSnapshots(storage, source)).map(snapshotEntry);
  return { result: entries, summary: renderSnapshotList(entries, source) };
}
