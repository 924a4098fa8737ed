import fs from 'node:fs/promises';
import path from 'node:path';
import { physicalLevel } from '../../agent/engines/physical/copy.ts';
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

/** Where each tool's physical backup of the source lands; the restore comparison reads them back. */
function outputs(context: BenchContext) {
  return {
    store: path.join(context.work, 'store-physical'),
    mariabackup: path.join(context.work, 'mariabackup.xb.zst'),
    mariabackupTmp: path.join(context.work, 'mariabackup-tmp'),
    tar: path.join(context.work, 'datadir.tar.zst'),
  };
}

/** The zstd level stepback's physical backup uses: the limit compresses at the same level. */
const level = physicalLevel.zstd;

/**
 * Whole physical backup: stepback (quiesce, shutdown, copy, restart) vs mariabackup vs tar of the
 * stopped datadir. stepback's storage makes every file durable before the MANIFEST, so the others'
 * times include a `sync -f` of what they wrote.
 */
export function physicalBackup(context: BenchContext): Comparison {
  const out = outputs(context);
  const { source } = context;
  return {
    name: 'physical backup',
    rawBytes: context.dataset.datadirBytes,
    rows: context.dataset.rows,
    contenders: [
      {
        name: 'stepback backup',
        role: 'stepback',
        missing: () => stepbackCommandMissing('backup'),
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
            '--compression',
            'zstd',
            '--concurrency',
            '2',
          ]);
          return {
            ...run,
            storedBytes: await directoryBytes(out.store),
          };
        },
      },
      {
        name: 'mariabackup --stream | zstd -T2 -3',
        role: 'peer',
        missing: () => binariesMissing('mariabackup', 'zstd'),
        before: () => emptyDir(out.mariabackupTmp),
        run: async () => {
          const run = await timed(
            `mariabackup --defaults-file=${source.cnf} --backup --stream=xbstream --user=root --socket=${source.socket} ` +
              `--datadir=${source.datadir} --target-dir=${out.mariabackupTmp} 2>/dev/null | zstd -T2 -3 -q > ${out.mariabackup} && ` +
              `sync -f ${out.mariabackup}`,
          );
          return {
            seconds: run.seconds,
            peakRssMb: run.peakRssMb,
            storedBytes: await fileBytes(out.mariabackup),
          };
        },
      },
      {
        name: `tar | zstd -T2 -${level} of the stopped datadir`,
        role: 'limit',
        missing: () => binariesMissing('tar', 'zstd'),
        before: () => source.stop(),
        run: async () => {
          const run = await timed(
            `tar -C ${source.datadir} -cf - . | zstd -T2 -${level} -q > ${out.tar} && sync -f ${out.tar}`,
          );
          return { seconds: run.seconds, peakRssMb: run.peakRssMb, storedBytes: await fileBytes(out.tar) };
        },
        after: () => source.start(),
      },
    ],
  };
}

/**
 * Whole restore: stepback (stage, verify, swap, start) vs mariabackup extract+prepare+copy-back vs
 * untar, each ending with its files on disk.
 */
export function physicalRestore(context: BenchContext): Comparison {
  const out = outputs(context);
  const { target } = context;
  const extract = path.join(context.work, 'restore-extract');
  const datadir = path.join(context.work, 'restore-datadir');
  const exists = async (file: string, what: string) =>
    (await fs.stat(file).catch(() => undefined))
      ? undefined
      : `no ${what} to restore (its backup did not run)`;
  return {
    name: 'restore',
    rawBytes: context.dataset.datadirBytes,
    rows: context.dataset.rows,
    contenders: [
      {
        name: 'stepback restore',
        role: 'stepback',
        missing: async () =>
          (await stepbackCommandMissing('restore')) ??
          (await exists(path.join(out.store, 'bench', '0'), 'stepback backup')),
        run: async () => {
          const run = await stepback([
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
          ]);
          return run;
        },
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
      {
        name: 'zstd -d | tar -x',
        role: 'limit',
        missing: async () => (await binariesMissing('tar', 'zstd')) ?? (await exists(out.tar, 'tar archive')),
        before: () => emptyDir(datadir),
        run: async () => {
          const run = await timed(`zstd -dc ${out.tar} | tar -x -C ${datadir} && sync -f ${datadir}`);
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
