import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ManifestError, StepbackError } from '../../../core/errors.ts';
import type { FileBase } from '../../../core/manifest.ts';
import { listReplacedEntries } from './files.ts';
import { type DataLayout, replacedDirectories } from './layout.ts';

/**
 * A restore replaces files by renames only: the old entries move into a holding directory, the
 * staged ones move in. Every move is planned and recorded before the first one happens, so a
 * failure — or a kill — at any point can be undone by renaming back, and the old files are deleted
 * only once the restored instance runs with its position set.
 */

const AbsolutePath = z.string().refine((value) => path.isAbsolute(value), 'must be an absolute path');

export const SwapPlan = z.object({
  /** Old entries, moved from `live` to `held` first. */
  aside: z.array(z.object({ live: AbsolutePath, held: AbsolutePath })),
  /** Restored entries, moved from `staged` to `live` once every old one is aside. */
  in: z.array(z.object({ staged: AbsolutePath, live: AbsolutePath })),
});
export type SwapPlan = z.infer<typeof SwapPlan>;

/**
 * What a restore records in the operation marker. `staging`: downloading, the instance untouched;
 * `swapping`: moving files, mysqld stopped; `started`: the restored files have run in mysqld;
 * `committed`: the restore is complete and only the old files remain to delete.
 */
export const RestoreJournal = z.object({
  phase: z.enum(['staging', 'swapping', 'started', 'committed']),
  /** Holding directories this restore created (staged and old files), removed at the end. */
  holding: z.array(AbsolutePath).min(1),
  plan: SwapPlan.optional(),
});
export type RestoreJournal = z.infer<typeof RestoreJournal>;

/** Where a restore keeps staged and old files: beside the datadir, on the filesystem of each directory. */
export interface RestoreArea {
  holding: string[];
  /** Root of the staged tree of `base`. */
  stagedRoot(base: FileBase): string;
  /** Where an old entry of `dir` is held. */
  heldDirectory(dir: string): string;
}

const holdingSuffix = '.stepback-restore';

async function deviceOf(target: string): Promise<number> {
  let current = target;
  for (;;) {
    try {
      return (await fs.stat(current)).dev;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || path.dirname(current) === current)
        throw error;
      current = path.dirname(current);
    }
  }
}

/**
 * The holding directories of a restore into `layout`: `<datadir>.stepback-restore` for every
 * directory on the datadir's filesystem (so each move is a rename), a hidden directory inside any
 * other directory (InnoDB and log directories on their own volume). A datadir that is itself a
 * mount point cannot be swapped by renames beside it: refused before anything is downloaded.
 */
export async function restoreArea(layout: DataLayout): Promise<RestoreArea> {
  const main = `${layout.datadir}${holdingSuffix}`;
  const mainDevice = await deviceOf(path.dirname(layout.datadir));
  const directories = replacedDirectories(layout);
  const roots = new Map<string, string>();
  for (const dir of directories) {
    if ((await deviceOf(dir)) === mainDevice) {
      roots.set(dir, main);
    } else if (dir === layout.datadir) {
      throw new StepbackError(
        `the datadir ${dir} is on another filesystem than ${path.dirname(dir)}: a restore stages files beside the datadir so that replacing them is a rename`,
        {
          hint: `mount the volume one level up and point datadir at a directory inside it (e.g. ${dir}/data → datadir)`,
        },
      );
    } else {
      roots.set(dir, path.join(dir, holdingSuffix));
    }
  }
  const rootOf = (dir: string) => roots.get(dir) ?? main;
  return {
    holding: [...new Set(roots.values())],
    stagedRoot: (base) => path.join(rootOf(layout.baseDirs[base]), 'staged', base),
    heldDirectory: (dir) => path.join(rootOf(dir), 'old', String(directories.indexOf(dir))),
  };
}

async function exists(target: string): Promise<boolean> {
  try {
    await fs.lstat(target);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * The moves that replace the instance's data with the staged entries (`base` and top-level name
 * each). Computed with mysqld stopped, so the list of old entries is final.
 */
export async function planSwap(
  layout: DataLayout,
  area: RestoreArea,
  staged: readonly { base: FileBase; top: string }[],
): Promise<SwapPlan> {
  const moves = new Map<string, { staged: string; live: string }>();
  for (const { base, top } of staged) {
    const live = path.join(layout.baseDirs[base], top);
    const source = path.join(area.stagedRoot(base), top);
    const other = moves.get(live);
    if (other && other.staged !== source) {
      throw new ManifestError(`two entries of the backup restore to ${live}`);
    }
    moves.set(live, { staged: source, live });
  }
  const replaced = new Set(await listReplacedEntries(layout));
  for (const live of moves.keys()) {
    // Whatever stands where a restored entry goes is moved aside too, never overwritten.
    if (!replaced.has(live) && (await exists(live))) replaced.add(live);
  }
  return {
    aside: [...replaced].sort().map((live) => ({
      live,
      held: path.join(area.heldDirectory(path.dirname(live)), path.basename(live)),
    })),
    in: [...moves.values()],
  };
}

/** Moves the old entries aside, then the staged ones in. */
export async function applySwap(plan: SwapPlan, layout: DataLayout): Promise<void> {
  for (const dir of new Set(plan.aside.map((move) => path.dirname(move.held)))) {
    await fs.mkdir(dir, { recursive: true });
  }
  for (const move of plan.aside) await fs.rename(move.live, move.held);
  for (const dir of new Set(Object.values(layout.baseDirs))) await fs.mkdir(dir, { recursive: true });
  for (const move of plan.in) await fs.rename(move.staged, move.live);
}

/**
 * Undoes a swap however far it got: restored entries that were moved in go back to the staging
 * area, files the restored server created are removed (`serverRan`), and old entries move back.
 * Idempotent: each step looks at what exists. Throws when an old entry cannot be put back, naming it.
 */
export async function rollBackSwap(
  plan: SwapPlan,
  layout: DataLayout,
  options: { serverRan: boolean },
): Promise<void> {
  for (const move of [...plan.in].reverse()) {
    if ((await exists(move.live)) && !(await exists(move.staged))) {
      await fs.mkdir(path.dirname(move.staged), { recursive: true });
      await fs.rename(move.live, move.staged);
    }
  }
  if (options.serverRan) {
    // Every old entry is aside (the server starts only after all moves): what stands now is new.
    for (const entry of await listReplacedEntries(layout))
      await fs.rm(entry, { recursive: true, force: true });
  }
  const stuck: string[] = [];
  for (const move of [...plan.aside].reverse()) {
    if (!(await exists(move.held))) continue;
    if (await exists(move.live)) {
      stuck.push(move.held);
      continue;
    }
    await fs.rename(move.held, move.live);
  }
  if (stuck.length > 0) {
    throw new StepbackError(
      `could not put ${stuck.length} old entries back, because something stands in their place: ${stuck.slice(0, 5).join(', ')}`,
      { hint: 'compare each with what is in the datadir now and move it back by hand' },
    );
  }
}

/** Removes the holding directories (staged files, and old files once nothing needs them). */
export async function removeHolding(holding: readonly string[]): Promise<void> {
  for (const dir of holding) await fs.rm(dir, { recursive: true, force: true });
}

/** Refuses a journal (read back from the marker) whose moves reach outside this restore's directories. */
export function checkJournal(journal: RestoreJournal, layout: DataLayout): void {
  const inside = (target: string, roots: readonly string[]) =>
    roots.some((root) => target.startsWith(`${root}${path.sep}`));
  const liveRoots = replacedDirectories(layout);
  const holdingOk = journal.holding.every((dir) => dir.endsWith(holdingSuffix));
  const movesOk = [
    ...(journal.plan?.aside.map((move) => [move.live, move.held] as const) ?? []),
    ...(journal.plan?.in.map((move) => [move.live, move.staged] as const) ?? []),
  ].every(([live, held]) => liveRoots.includes(path.dirname(live)) && inside(held, journal.holding));
  if (!holdingOk || !movesOk) {
    throw new StepbackError('the restore journal in the operation marker names paths outside the restore', {
      hint: 'check the datadir by hand, then delete the marker file beside it',
    });
  }
}
