import { describe, expect, it } from 'vitest';
import { partSizeFor, S3_MAX_PART, S3_MAX_PARTS, S3_MIN_PART } from '../../core/storage/s3.ts';

const MiB = 1024 * 1024;
const TiB = 1024 * 1024 * MiB;

/** Bytes that `parts` parts hold under the growth schedule. */
function capacity(parts: number, minPartSize: number, sizeHint?: number): number {
  let total = 0;
  for (let n = 1; n <= parts; n++) total += partSizeFor(n, minPartSize, sizeHint);
  return total;
}

describe('partSizeFor', () => {
  it('keeps small files at the minimum part size', () => {
    expect(partSizeFor(1, 8 * MiB)).toBe(8 * MiB);
    expect(partSizeFor(1000, 8 * MiB)).toBe(8 * MiB);
  });

  it('grows so that 10,000 parts hold a 5 TiB file of unknown size', () => {
    expect(capacity(S3_MAX_PARTS, 8 * MiB)).toBeGreaterThan(5 * TiB);
    for (const n of [1, 1001, 5000, 10_000]) {
      expect(partSizeFor(n, 8 * MiB)).toBeGreaterThanOrEqual(S3_MIN_PART);
      expect(partSizeFor(n, 8 * MiB)).toBeLessThanOrEqual(S3_MAX_PART);
    }
  });

  it('starts large enough when the size is known, so the file fits in 9,000 parts without growing', () => {
    const size = 5 * TiB;
    const first = partSizeFor(1, 8 * MiB, size);
    expect(first * 9000).toBeGreaterThanOrEqual(size);
    expect(first % MiB).toBe(0);
  });
});
