import fs from 'node:fs/promises';
import path from 'node:path';
import type { Recoverer } from '../../../instance/marker.ts';

/** The directory, inside the server's work directory, where a multirestore process fetches files. */
export function fetchDirName(pid: number = process.pid): string {
  return `stepback-multirestore-${pid}`;
}

/** A killed multirestore leaves fetched files behind; its ledger makes the next run resume. */
export const multirestoreRecoverer: Recoverer = {
  async recover(_daemon, marker) {
    const workDir = marker.details?.workDir;
    if (typeof workDir !== 'string') return [];
    const dir = path.join(workDir, fetchDirName(marker.pid));
    const existed = await fs.stat(dir).then(
      () => true,
      () => false,
    );
    await fs.rm(dir, { recursive: true, force: true });
    return existed ? ['removed the files fetched by the interrupted multirestore'] : [];
  },
};
