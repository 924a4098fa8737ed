import { describe, expect, it } from 'vitest';
import { prepareMemory } from '../../agent/engines/online/restore.ts';

const MiB = 1024 * 1024;

describe('prepareMemory', () => {
  it('gives mariabackup --prepare a quarter of the free memory, in whole MiB', () => {
    expect(prepareMemory(2048 * MiB + 123)).toBe(512 * MiB);
  });

  it('never less than the tool’s own default of 100 MiB, never more than 1 GiB', () => {
    expect(prepareMemory(40 * MiB)).toBe(100 * MiB);
    expect(prepareMemory(64 * 1024 * MiB)).toBe(1024 * MiB);
  });
});
