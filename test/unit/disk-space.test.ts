import { describe, expect, it } from 'vitest';
import { DiskFullError, describeBytes, diskFullError, isDiskFull } from '../../core/disk-space.ts';
import { exitCodeOf } from '../../core/errors.ts';

describe('a full disk', () => {
  it('is recognised from Node and from MySQL/MariaDB errors, and nothing else', () => {
    expect(isDiskFull(Object.assign(new Error('write'), { code: 'ENOSPC' }))).toBe(true);
    expect(
      isDiskFull({
        errno: 3,
        message: `Error writing file '/f/x.csv' (Errcode: 28 "No space left on device")`,
      }),
    ).toBe(true);
    expect(
      isDiskFull({ errno: 1021, message: 'Disk full (/tmp/#sql); waiting for someone to free some space' }),
    ).toBe(true);
    expect(isDiskFull(Object.assign(new Error('denied'), { code: 'EACCES' }))).toBe(false);
    expect(isDiskFull({ errno: 3, message: "Error writing file '/f' (Errcode: 280)" })).toBe(false);
    expect(isDiskFull(undefined)).toBe(false);
    expect(isDiskFull('No space left on device')).toBe(false);
  });

  it('names the directory, the bytes needed and the bytes free, with code DISK_FULL and exit 1', () => {
    const error = new DiskFullError('staging f', { dir: '/d', neededBytes: 3 * 1024 * 1024, freeBytes: 512 });
    expect(error.message).toBe(
      'staging f: the filesystem of /d is full (it needs 3.0 MiB (3145728 bytes), 512 bytes is free)',
    );
    expect(error.code).toBe('DISK_FULL');
    expect(exitCodeOf(error)).toBe(1);
    expect(describeBytes(0)).toBe('0 bytes');
    expect(describeBytes(1536)).toBe('1.5 KiB (1536 bytes)');
  });

  it('measures the free space of the directory it names, and leaves it out when it cannot', async () => {
    const here = await diskFullError('writing', process.cwd(), 10);
    expect(here.freeBytes).toBeGreaterThan(0);
    const nowhere = await diskFullError('writing', '/no/such/directory', 10);
    expect(nowhere.freeBytes).toBeUndefined();
    expect(nowhere.message).toBe('writing: the filesystem of /no/such/directory is full (it needs 10 bytes)');
  });
});
