import { describe, expect, it } from 'vitest';
import { partSizeFor, S3_MAX_PART, S3_MAX_PARTS, S3_MIN_PART } from '../../core/storage/s3.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

describe('partSizeFor', () => {
  it('keeps files of unknown or small size at the minimum part size', () => {
    expect(partSizeFor(8 * MiB)).toBe(8 * MiB);
    expect(partSizeFor(8 * MiB, 1 * GiB)).toBe(8 * MiB);
  });

  it('never goes below the 5 MiB S3 minimum', () => {
    expect(partSizeFor(1 * MiB)).toBe(S3_MIN_PART);
  });

  it('grows with the expected size so the file fits in 9,000 parts, in whole MiB', () => {
    for (const size of [100 * GiB, 1 * TiB, 5 * TiB]) {
      const part = partSizeFor(8 * MiB, size);
      expect(part * 9000).toBeGreaterThanOrEqual(size);
      expect(part % MiB).toBe(0);
      expect(part).toBeLessThanOrEqual(S3_MAX_PART);
    }
  });

  it('holds the largest S3 object (5 TiB) within 10,000 parts', () => {
    expect(partSizeFor(8 * MiB, 5 * TiB) * S3_MAX_PARTS).toBeGreaterThanOrEqual(5 * TiB);
  });
});
