import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * Where a point-in-time restore downloads the archived binary logs it replays: beside the datadir
 * and named after it, so a restore killed mid-replay leaves it where the next command on the same
 * instance finds it and removes it (and not that of another instance in the same parent directory).
 */
const REPLAY_DIR_INFIX = '.stepback-binlogs-';

export function makeReplayDir(datadir: string): Promise<string> {
  return fs.mkdtemp(`${datadir}${REPLAY_DIR_INFIX}`);
}

/** Removes the download directories a killed replay left beside `datadir`; returns them. */
export async function removeReplayDirs(datadir: string): Promise<string[]> {
  const parent = path.dirname(datadir);
  const prefix = `${path.basename(datadir)}${REPLAY_DIR_INFIX}`;
  const left = (await fs.readdir(parent).catch(() => [] as string[])).filter((name) =>
    name.startsWith(prefix),
  );
  for (const name of left) await fs.rm(path.join(parent, name), { recursive: true, force: true });
  return left.map((name) => path.join(parent, name));
}
