import { PassThrough, type Transform } from 'node:stream';
import zlib from 'node:zlib';
import type { Compression } from '../manifest.ts';

/** File name suffix of each codec, so stored objects say how to open them. */
export const compressionSuffix: Record<Compression, string> = { zstd: '.zst', gzip: '.gz', none: '' };

/** zstd level 3 and gzip level 6 are each codec's own default: fast, and most of the gain. */
export const defaultLevel: Record<Compression, number> = { zstd: 3, gzip: 6, none: 0 };

export interface CodecOptions {
  /**
   * Size of each output buffer. Default 256 KiB; streams of whole files go faster with 1 MiB (each
   * buffer is one round trip to the thread pool: about a quarter less CPU for zstd).
   */
  chunkSize?: number;
}

/** A compressing transform; `none` is a pass-through so pipelines keep one shape. */
export function createCompressor(
  compression: Compression,
  level = defaultLevel[compression],
  options: CodecOptions = {},
): Transform {
  const chunkSize = options.chunkSize ?? 256 * 1024;
  switch (compression) {
    case 'zstd':
      return zlib.createZstdCompress({
        params: { [zlib.constants.ZSTD_c_compressionLevel]: level },
        chunkSize,
      });
    case 'gzip':
      return zlib.createGzip({ level, chunkSize });
    case 'none':
      return new PassThrough();
  }
}

export function createDecompressor(compression: Compression, options: CodecOptions = {}): Transform {
  const chunkSize = options.chunkSize ?? 256 * 1024;
  switch (compression) {
    case 'zstd':
      return zlib.createZstdDecompress({ chunkSize });
    case 'gzip':
      return zlib.createGunzip({ chunkSize });
    case 'none':
      return new PassThrough();
  }
}
