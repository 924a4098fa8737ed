import { archiveBinlogs, type BinlogArchiveResult } from '../binlogs/archive.ts';
import { withArchiveLock } from '../binlogs/lock.ts';
import { openInstance, withRequestStorage } from './open.ts';
import type { OperationContext, RequestOf } from './operation.ts';

export type { BinlogArchiveResult };

/**
 * `stepback binlogs archive`, and the BinlogArchive state machine's task. It takes no instance
 * lease: it only reads closed files and rotates the current one, which a backup or restore running
 * on the same instance does not mind (and a lease would make every run during a backup fail); only
 * one archive run at a time (lock.ts).
 */
export async function runBinlogArchive(
  request: RequestOf<'binlogArchive'>,
  context: OperationContext,
): Promise<BinlogArchiveResult> {
  const daemon = await openInstance(request, context.logger);
  return withArchiveLock(daemon, () =>
    withRequestStorage(request, context, (storage) =>
      archiveBinlogs(
        daemon,
        storage,
        { dir: request.dir, maxAgeSeconds: request.maxAge, compression: request.compression },
        context,
      ),
    ),
  );
}
