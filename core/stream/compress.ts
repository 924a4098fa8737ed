import { PassThrough, type Transform } from 'node:stream';
import zlib from 'node:zlib';
import type { Compression } from '../manifest.ts';

/** File name suffix of each codec, so stored objects say how to open them. */
export const compressionSuffix: Record<Compression, string> = { zstd: '.zst', gzip: '.gz', none: '' };

/** zstd level 3 and gzip level 6 are each codec's own default: fast, and most of the gain. */
export const defaultLevel: Record<Compression, number> = { zstd: 3, gzip: 6, none: 0 };

/** A compressing transform; `none` is a pass-through so pipelines keep one shape. */
export function createCompressor(compression: Compression, level = defaultLevel[compression]): Transform {
  switch (compression) {
    case 'zstd':
      return zlib.createZstdCompress({
        params: { [zlib.constants.ZSTD_c_compressionLevel]: level },
        chunkSize: 256 * 1024,
      });
    case 'gzip':
      return zlib.createGzip({ level, chunkSize: 256 * 1024 });
    case 'none':
      return new PassThrough();
  }
}

export function createDecompressor(compression: Compression): Transform {
  switch (compression) {
    case 'zstd':
      return zlib.createZstdDecompress({ chunkSize: 256 * 1024 });
    case 'gzip':
      return zlib.createGunzip({ chunkSize: 256 * 1024 });
    case 'none':
      return new PassThrough();
  }
}
