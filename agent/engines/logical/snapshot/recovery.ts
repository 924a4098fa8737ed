import fs from 'node:fs/promises';
import path from 'node:path';
import type { Recoverer } from '../../../instance/marker.ts';

/** The prefix of the OUTFILEs a snapshot process writes into the server's work directory. */
export function outfilePrefix(pid: number = process.pid): string {
  return `stepback-snapshot-${pid}-`;
}

/** A killed snapshot leaves its OUTFILEs in the work directory: they go. */
export const snapshotRecoverer: Recoverer = {
  async recover(_daemon, marker, logger) {
    const workDir = marker.details?.workDir;
    if (typeof workDir !== 'string') return [];
    const prefix = outfilePrefix(marker.pid);
    const leftovers = (await fs.readdir(workDir).catch(() => [] as string[])).filter((name) =>
      name.startsWith(prefix),
    );
    for (const name of leftovers) await fs.rm(path.join(workDir, name), { force: true });
    if (leftovers.length > 0)
      logger.info(`removed ${leftovers.length} temporary dump files of the interrupted snapshot`);
    return leftovers.length > 0 ? [`removed ${leftovers.length} temporary dump files`] : [];
  },
};
