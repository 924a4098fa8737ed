import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isProcessRunning, readPidFile, waitForExit } from '../../agent/mysqld/process.ts';

/** Every *.pid file under `dir` (mariadbd, s3rver), however deep. */
async function pidFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.pid'))
    .map((e) => path.join(e.parentPath, e.name));
}

/** Creates the run's temp root; the returned teardown kills whatever tests left running and removes it. */
export default async function setup(): Promise<() => Promise<void>> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'stepback-test-'));
  process.env.STEPBACK_TEST_ROOT = root;
  return async () => {
    for (const file of await pidFiles(root)) {
      const pid = await readPidFile(file);
      if (pid !== undefined && (await isProcessRunning(pid))) {
        process.kill(pid, 'SIGKILL');
        await waitForExit(pid, 10_000);
      }
    }
    if (!process.env.STEPBACK_KEEP_TEST_ROOT) await fs.rm(root, { recursive: true, force: true });
  };
}
