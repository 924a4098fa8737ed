import fs from 'node:fs/promises';
import path from 'node:path';
import type { Recoverer } from '../../instance/marker.ts';
import type { MysqlDaemon } from '../../mysqld/daemon.ts';
import { isProcessRunning, readPidFile, waitForExit } from '../../mysqld/process.ts';

/** Where an online backup of MySQL clones the instance: beside the datadir, never inside it. */
export function cloneDirectory(daemon: MysqlDaemon): string {
  return `${path.resolve(daemon.config.datadir)}.stepback-clone`;
}

/** The pid file of the throwaway mysqld an online backup of MySQL starts on its copy. */
export function clonePidFile(work: string): string {
  return path.join(work, 'copy.pid');
}

/**
 * A killed online backup of MySQL can leave its copy beside the datadir (a full copy of the data),
 * perhaps with the throwaway mysqld still running on it: the server is stopped and the copy goes.
 * (A killed mariabackup stream leaves nothing but the partial backup without a MANIFEST.)
 */
export const backupRecoverer: Recoverer = {
  async recover(daemon, _marker, logger) {
    const work = cloneDirectory(daemon);
    if (!(await fs.stat(work).catch(() => undefined))) return [];
    const actions: string[] = [];
    const pid = await readPidFile(clonePidFile(work));
    if (pid !== undefined && (await isProcessRunning(pid))) {
      // Only the copy is at stake: it is deleted next.
      process.kill(pid, 'SIGKILL');
      await waitForExit(pid, 30_000);
      actions.push('stopped the mysqld started on the copy of the interrupted online backup');
    }
    await fs.rm(work, { recursive: true, force: true });
    logger.info(`removed ${work}, the copy an interrupted online backup left`);
    actions.push('removed the copy the interrupted online backup left beside the datadir');
    return actions;
  },
};
