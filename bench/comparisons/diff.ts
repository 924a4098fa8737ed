import { type BenchContext, binariesMissing, client, stepback, stepbackCommandMissing } from '../context.ts';
import { benchDatabase, benchTables } from '../dataset.ts';
import type { Comparison } from '../harness.ts';
import { timed } from '../measure.ts';

const tables = Array.from({ length: benchTables }, (_, i) => `sbtest${i + 1}`);

/** Diff of two identical copies (the source and the restored target): chunk checksums vs client scans vs CHECKSUM TABLE. */
export function diffIdentical(context: BenchContext): Comparison {
  const { source, target } = context;
  const uri = (socket: string) =>
    `mysql://root@localhost/${benchDatabase}?socket=${encodeURIComponent(socket)}`;
  const hasCopy = async () => {
    const rows = await target.query(`SHOW DATABASES LIKE '${benchDatabase}'`);
    return rows.length ? undefined : `the target holds no copy of ${benchDatabase} (the restore did not run)`;
  };
  const scan = (instance: typeof source) =>
    `${client(instance)} --batch --skip-column-names ${benchDatabase} -e "${tables.map((t) => `SELECT * FROM ${t} ORDER BY id`).join('; ')}" > /dev/null`;
  const checksum = (instance: typeof source) =>
    `${client(instance)} ${benchDatabase} -e "CHECKSUM TABLE ${tables.join(', ')}" > /dev/null`;
  return {
    name: 'diff of identical copies',
    rawBytes: context.dataset.datadirBytes,
    rows: context.dataset.rows,
    contenders: [
      {
        name: 'stepback diff',
        role: 'stepback',
        missing: async () => (await stepbackCommandMissing('diff')) ?? (await hasCopy()),
        run: async () => {
          const run = await stepback(['diff', '--left', uri(source.socket), '--right', uri(target.socket)]);
          return { seconds: run.seconds, peakRssMb: run.peakRssMb };
        },
      },
      {
        name: 'two SELECT … ORDER BY pk client scans to /dev/null',
        role: 'peer',
        missing: async () => (await binariesMissing('mariadb')) ?? (await hasCopy()),
        run: async () => {
          const run = await timed(`${scan(source)} & ${scan(target)} & wait`);
          return { seconds: run.seconds, peakRssMb: run.peakRssMb };
        },
      },
      {
        name: 'CHECKSUM TABLE on both sides',
        role: 'peer',
        missing: async () => (await binariesMissing('mariadb')) ?? (await hasCopy()),
        run: async () => {
          const run = await timed(`${checksum(source)} & ${checksum(target)} & wait`);
          return { seconds: run.seconds, peakRssMb: run.peakRssMb };
        },
      },
    ],
  };
}
