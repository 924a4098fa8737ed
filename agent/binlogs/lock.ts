import fs from 'node:fs/promises';
import { InstanceBusyError } from '../../core/errors.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import { isProcessRunning } from '../mysqld/process.ts';

/**
 * One binlog archive run per instance at a time. A run that outlasts the schedule's interval would
 * otherwise meet the next one uploading the same file, and take its half-written entry for one a
 * killed run left. Not the instance lease: archiving never changes the instance, and a backup or
 * restore running meanwhile must not make it fail. A lock whose process is gone is taken over.
 */
export async function withArchiveLock<T>(daemon: MysqlDaemon, work: () => Promise<T>): Promise<T> {
  const file = `${daemon.config.datadir}.stepback-binlog-archive.lock`;
  const content = JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString() });
  for (let attempt = 0; ; attempt++) {
    try {
      await fs.writeFile(file, content, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
      const held = await fs.readFile(file, 'utf8').then(
        (text) => JSON.parse(text) as { pid?: unknown; startedAt?: unknown },
        () => ({}) as { pid?: unknown; startedAt?: unknown },
      );
      const pid = typeof held.pid === 'number' ? held.pid : undefined;
      if (pid !== undefined && pid !== process.pid && (await isProcessRunning(pid))) {
        throw new InstanceBusyError(
          `another binlogs archive (pid ${pid}, since ${String(held.startedAt)}) is running on ${daemon.config.datadir}`,
          { hint: 'wait for it to finish: the next run archives whatever it leaves' },
        );
      }
      await fs.rm(file, { force: true });
    }
  }
  try {
    return await work();
  } finally {
    await fs.rm(file, { force: true });
  }
}
