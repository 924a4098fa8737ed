import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  binlogInfoPosition,
  mergePositions,
  replicaInfoPosition,
} from '../../agent/engines/online/position.ts';
import { XbstreamWatcher } from '../../agent/engines/online/xbstream.ts';
import { tempDir } from '../support/root.ts';

const run = promisify(execFile);

/** A real xbstream of `files`, written by mbstream itself. */
async function xbstreamOf(files: Record<string, Buffer | string>): Promise<Buffer> {
  const dir = await tempDir('xbstream');
  for (const [name, content] of Object.entries(files)) await fs.writeFile(path.join(dir, name), content);
  const { stdout } = await run('mbstream', ['-c', ...Object.keys(files)], {
    cwd: dir,
    encoding: 'buffer',
    maxBuffer: 64 << 20,
  });
  return stdout;
}

/** Passes `stream` through a watcher in pieces of `size` bytes; returns the watcher and what came out. */
async function watch(stream: Buffer, size: number, wanted: string[]) {
  const watcher = new XbstreamWatcher(wanted);
  const out: Buffer[] = [];
  const pieces = [];
  for (let at = 0; at < stream.length; at += size) pieces.push(stream.subarray(at, at + size));
  await pipeline(
    Readable.from(pieces),
    watcher,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.push(chunk);
        callback();
      },
    }),
  );
  return { watcher, out: Buffer.concat(out) };
}

describe('XbstreamWatcher', () => {
  it('passes the stream unchanged and keeps the wanted files, however the chunks are cut', async () => {
    const info = 'mysql-bin.000003\t1234\t0-1-42,1-2-7\n';
    const stream = await xbstreamOf({
      ibdata1: Buffer.alloc(3 * 1024 * 1024 + 17, 7),
      xtrabackup_binlog_info: info,
      'other.txt': 'not wanted',
    });
    for (const size of [13, 4096, stream.length]) {
      const { watcher, out } = await watch(stream, size, ['xtrabackup_binlog_info']);
      expect(out.equals(stream)).toBe(true);
      expect(watcher.file('xtrabackup_binlog_info')).toBe(info);
      expect(watcher.file('other.txt')).toBeUndefined();
      expect(watcher.files).toBe(3);
    }
    // Byte by byte: every header split at every offset.
    const small = await xbstreamOf({ xtrabackup_binlog_info: info, 'b.txt': 'b' });
    const { watcher } = await watch(small, 1, ['xtrabackup_binlog_info']);
    expect(watcher.file('xtrabackup_binlog_info')).toBe(info);
  });

  it('refuses bytes that are not an xbstream, and a stream cut in the middle of a chunk', async () => {
    await expect(watch(Buffer.from('this is not a backup stream at all'), 8, [])).rejects.toThrow(
      /not an xbstream chunk/,
    );
    const stream = await xbstreamOf({ 'a.txt': 'abc'.repeat(1000) });
    await expect(watch(stream.subarray(0, stream.length - 100), 512, [])).rejects.toThrow(
      /middle of a chunk/,
    );
  });
});

describe('the position of an online backup', () => {
  it('reads the GTID set of the binlog info file, empty without one', () => {
    expect(binlogInfoPosition('mysql-bin.000001\t831\t0-7-3\n')).toBe('0-7-3');
    expect(binlogInfoPosition('mysql-bin.000001\t1245\t0-7-4,5-7-1')).toBe('0-7-4,5-7-1');
    expect(binlogInfoPosition(undefined)).toBe('');
    expect(() => binlogInfoPosition("mysql-bin.000001\t1\t0-1-1'; DROP")).toThrow(/not a|without a valid/);
  });

  it('reads gtid_slave_pos of the replica info file', () => {
    expect(
      replicaInfoPosition(
        "SET GLOBAL gtid_slave_pos = '0-7-8,5-7-4';\nCHANGE MASTER TO master_use_gtid = slave_pos\n",
      ),
    ).toBe('0-7-8,5-7-4');
    expect(replicaInfoPosition("CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4")).toBe(
      '',
    );
  });

  it('merges the binlog and replica positions per domain, the later GTID winning', () => {
    expect(mergePositions('0-101-3', '0-100-456,1-100-9')).toBe('0-100-456,1-100-9');
    expect(mergePositions('2-5-10', '0-1-1')).toBe('0-1-1,2-5-10');
    expect(mergePositions('', '')).toBe('');
  });
});
