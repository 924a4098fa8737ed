import { describe, expect, it } from 'vitest';
import type { BinlogArchive, CompleteBinlog } from '../../core/binlogs/catalog.ts';
import { gapBetween } from '../../core/binlogs/catalog.ts';
import { parseGtidSet } from '../../core/binlogs/gtids.ts';
import { type BinlogManifest, binlogEntryName, parseBinlogManifest } from '../../core/binlogs/manifest.ts';
import { planBinlogs } from '../../core/binlogs/plan.ts';
import { planBinlogPrune } from '../../core/binlogs/retention.ts';
import { PointNotCoveredError } from '../../core/errors.ts';
import type { BackupHandle } from '../../core/storage/types.ts';

const uuid = '3e11fa47-71ca-11e1-9e33-c80aa9429562';

function manifest(file: string, before: string, after: string, from: string, to: string): BinlogManifest {
  return {
    formatVersion: 1,
    entry: binlogEntryName(new Date(from), file),
    file,
    object: 'binlog.zst',
    keyspace: 'shop',
    shard: '0',
    host: 'db1',
    flavor: 'mariadb',
    serverVersion: '10.11.19-MariaDB',
    serverId: 1,
    gtidsBefore: before,
    gtidsAfter: after,
    transactions: 1,
    firstEventTime: from,
    lastEventTime: to,
    archivedAt: to,
    compression: 'zstd',
    size: 100,
    storedSize: 50,
    sha256: 'a'.repeat(64),
  };
}

function archiveOf(manifests: BinlogManifest[]): BinlogArchive {
  const entries = manifests.map(
    (m): CompleteBinlog => ({ entry: m.entry, complete: true, manifest: m, handle: {} as BackupHandle }),
  );
  return { dir: 'binlogs/shop/0', entries, gaps: [], ranges: [] };
}

const files = [
  manifest('mysql-bin.000001', '', '0-1-10', '2026-12-01T10:00:00Z', '2026-12-01T10:05:00Z'),
  manifest('mysql-bin.000002', '0-1-10', '0-1-20', '2026-12-01T10:05:00Z', '2026-12-01T10:10:00Z'),
  manifest('mysql-bin.000003', '0-1-20', '0-1-30', '2026-12-01T10:10:00Z', '2026-12-01T10:15:00Z'),
];
const backup = { name: 'b1', flavor: 'mariadb' as const, position: '0-1-12' };

describe('GTID sets of the binlog archive', () => {
  it('reads a MariaDB state by domain: a GTID is held once its domain reached its sequence', () => {
    const state = parseGtidSet('mariadb', '0-1-10,0-2-12,1-1-3');
    expect(state.has('0-1-12')).toBe(true);
    expect(state.has('0-1-13')).toBe(false);
    expect(state.position()).toBe('0-2-12,1-1-3');
    expect(state.missingFrom(parseGtidSet('mariadb', '0-1-14,1-1-3'))).toBe('0-1-14');
  });

  it('subtracts MySQL interval sets exactly', () => {
    const set = parseGtidSet('mysql', `${uuid}:1-10:15-20`);
    expect(set.has(`${uuid}:12`)).toBe(false);
    expect(set.with(`${uuid}:11`).toString()).toBe(`${uuid}:1-11:15-20`);
    expect(set.missingFrom(parseGtidSet('mysql', `${uuid}:1-25`))).toBe(`${uuid}:11-14:21-25`);
  });
});

describe('the binlog archive catalog', () => {
  it('names a missing file and the transactions in no archived file', () => {
    const gap = gapBetween(files[0]!, files[2]!);
    expect(gap?.missingFiles).toEqual(['mysql-bin.000002']);
    expect(gap?.missingGtids).toBe('0-1-20');
    expect(gapBetween(files[0]!, files[1]!)).toBeUndefined();
  });

  it('refuses a manifest naming another entry', () => {
    const text = JSON.stringify(files[0]);
    expect(() => parseBinlogManifest(text, 'other')).toThrow(/names entry/);
    expect(parseBinlogManifest(text, files[0]!.entry).file).toBe('mysql-bin.000001');
  });
});

describe('planning a restore to a point', () => {
  it('takes the files from the first the backup lacks to the one the point falls in', () => {
    // The backup (0-1-12) holds all of the first file and part of the second.
    const time = planBinlogs(archiveOf(files), backup, { time: new Date('2026-12-01T10:07:00Z') });
    expect(time.map((f) => f.manifest.file)).toEqual(['mysql-bin.000002']);
    const gtid = planBinlogs(archiveOf(files), backup, { gtid: '0-1-25' });
    expect(gtid.map((f) => f.manifest.file)).toEqual(['mysql-bin.000002', 'mysql-bin.000003']);
  });

  it('includes the next file when the point is the second a file was closed in', () => {
    const plan = planBinlogs(archiveOf(files), backup, { time: new Date('2026-12-01T10:10:00Z') });
    expect(plan.map((f) => f.manifest.file)).toEqual(['mysql-bin.000002', 'mysql-bin.000003']);
  });

  it('refuses a point past the archive, or across a gap, naming what is covered', () => {
    expect(() => planBinlogs(archiveOf(files), backup, { time: new Date('2026-12-01T11:00:00Z') })).toThrow(
      PointNotCoveredError,
    );
    const gapped = archiveOf([files[0]!, files[2]!]);
    expect(() => planBinlogs(gapped, { ...backup, position: '0-1-5' }, { gtid: '0-1-25' })).toThrow(
      /gap after .*mysql-bin.000001: 1 file\(s\) not archived/,
    );
  });

  it('refuses when the archive starts after the backup', () => {
    expect(() => planBinlogs(archiveOf([files[2]!]), backup, { gtid: '0-1-25' })).toThrow(
      /0-1-20 between the backup and/,
    );
  });
});

describe('retention of the binlog archive', () => {
  it('removes only the files whose every transaction the oldest kept backup holds', () => {
    const plan = planBinlogPrune(
      archiveOf(files),
      { name: 'b2', flavor: 'mariadb', position: '0-1-20' },
      new Date('2026-12-02T00:00:00Z'),
    );
    expect(plan.remove.map((r) => r.entry)).toEqual([files[0]!.entry, files[1]!.entry]);
    expect(plan.keep).toBe(1);
  });
});
