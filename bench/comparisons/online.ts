import fs from 'node:fs/promises';
import path from 'node:path';
import {
  type BenchContext,
  binariesMissing,
  directoryBytes,
  emptyDir,
  fileBytes,
  stepback,
  stepbackCommandMissing,
} from '../context.ts';
import type { Comparison } from '../harness.ts';
import { timed } from '../measure.ts';

/** Where each tool's online backup of the source lands; the restore comparison reads them back. */
function outputs(context: BenchContext) {
  return {
    store: path.join(context.work, 'store-online'),
    mariabackup: path.join(context.work, 'online-mariabackup.xb.zst'),
    mariabackupTmp: path.join(context.work, 'online-mariabackup-tmp'),
  };
}

/**
 * Online backup of the running source: stepback (mariabackup's stream cut into parts, compressed,
 * hashed and stored) against the same tool piped into zstd at the same level. stepback's storage
 * makes every part durable before the MANIFEST, so the peer's time includes a `sync -f`.
 */
export function onlineBackup(context: BenchContext): Comparison {
  const out = outputs(context);
  const { source } = context;
  return {
    name: 'online backup',
    rawBytes: context.dataset.datadirBytes,
    rows: context.dataset.rows,
    contenders: [
      {
        name: 'stepback backup --engine online',
        role: 'stepback',
        missing: async () =>
          (await stepbackCommandMissing('backup')) ?? (await binariesMissing('mariabackup')),
        before: () => emptyDir(out.store),
        run: async () => {
          const run = await stepback([
            'backup',
            '--defaults-file',
            source.cnf,
            '--storage',
            `file://${out.store}`,
            '--dir',
            'bench/0',
            '--engine',
            'online',
            '--compression',
            'zstd',
            '--part-size',
            '256MiB',
          ]);
          return { ...run, storedBytes: await directoryBytes(out.store) };
        },
      },
      {
        name: 'mariabackup --stream | zstd -3',
        role: 'peer',
        missing: () => binariesMissing('mariabackup', 'zstd'),
        before: () => emptyDir(out.mariabackupTmp),
        run: async () => {
          const run = await timed(
            `mariabackup --defaults-file=${source.cnf} --backup --stream=xbstream --user=root --socket=${source.socket} ` +
              `--target-dir=${out.mariabackupTmp} 2>/dev/null | zstd -3 -q > ${out.mariabackup} && sync -f ${out.mariabackup}`,
          );
          return {
            seconds: run.seconds,
            peakRssMb: run.peakRssMb,
            storedBytes: await fileBytes(out.mariabackup),
          };
        },
      },
    ],
  };
}

/**
 * Restore of an online backup, each ending with prepared files in place: stepback (verify, extract,
 * prepare, swap, start) against mariabackup's own extract, prepare and copy-back.
 */
export function onlineRestore(context: BenchContext): Comparison {
  const out = outputs(context);
  const { target } = context;
  const extract = path.join(context.work, 'online-restore-extract');
  const datadir = path.join(context.work, 'online-restore-datadir');
  const exists = async (file: string, what: string) =>
    (await fs.stat(file).catch(() => undefined))
      ? undefined
      : `no ${what} to restore (its backup did not run)`;
  return {
    name: 'online restore',
    rawBytes: context.dataset.datadirBytes,
    rows: context.dataset.rows,
    contenders: [
      {
        name: 'stepback restore (online backup)',
        role: 'stepback',
        missing: async () =>
          (await stepbackCommandMissing('restore')) ??
          (await exists(path.join(out.store, 'bench', '0'), 'stepback online backup')),
        run: () =>
          stepback([
            'restore',
            '--defaults-file',
            target.cnf,
            '--storage',
            `file://${out.store}`,
            '--dir',
            'bench/0',
            '--delete-before-restore',
            '--concurrency',
            '2',
          ]),
      },
      {
        name: 'zstd -d | mbstream -x + mariabackup --prepare --copy-back',
        role: 'peer',
        missing: async () =>
          (await binariesMissing('mariabackup', 'mbstream', 'zstd')) ??
          (await exists(out.mariabackup, 'mariabackup stream')),
        before: async () => {
          await emptyDir(extract);
          await fs.rm(datadir, { recursive: true, force: true });
        },
        run: async () => {
          const run = await timed(
            `zstd -dc ${out.mariabackup} | mbstream -x -C ${extract} && ` +
              `mariabackup --prepare --target-dir=${extract} 2>/dev/null && ` +
              `mariabackup --copy-back --target-dir=${extract} --datadir=${datadir} 2>/dev/null && sync -f ${datadir}`,
          );
          return { seconds: run.seconds, peakRssMb: run.peakRssMb };
        },
      },
    ],
    teardown: async () => {
      await fs.rm(extract, { recursive: true, force: true });
      await fs.rm(datadir, { recursive: true, force: true });
    },
  };
}
