import { type BenchContext, binariesMissing, client, stepback, stepbackCommandMissing } from '../context.ts';
import { benchDatabase, benchTables } from '../dataset.ts';
import type { Comparison, Contender } from '../harness.ts';
import { timed } from '../measure.ts';

const tables = Array.from({ length: benchTables }, (_, i) => `sbtest${i + 1}`);

function sides(context: BenchContext) {
  const { source, target } = context;
  const uri = (socket: string) =>
    `mysql://root@localhost/${benchDatabase}?socket=${encodeURIComponent(socket)}`;
  const hasCopy = async () => {
    const rows = await target.query(`SHOW DATABASES LIKE '${benchDatabase}'`);
    return rows.length ? undefined : `the target holds no copy of ${benchDatabase} (the restore did not run)`;
  };
  const scan = (instance: typeof source) =>
    `${client(instance)} --batch --quick --skip-column-names ${benchDatabase} -e "${tables.map((t) => `SELECT * FROM ${t} ORDER BY id`).join('; ')}" > /dev/null`;
  const scans: Contender = {
    name: 'two SELECT … ORDER BY pk client scans to /dev/null',
    role: 'peer',
    missing: async () => (await binariesMissing('mariadb')) ?? (await hasCopy()),
    run: async () => {
      const run = await timed(`${scan(source)} & ${scan(target)} & wait`);
      return { seconds: run.seconds, peakRssMb: run.peakRssMb };
    },
  };
  const diff = async (...extra: string[]) => {
    const run = await stepback([
      'diff',
      '--left',
      uri(source.socket),
      '--right',
      uri(target.socket),
      ...extra,
    ]);
    return { seconds: run.seconds, peakRssMb: run.peakRssMb };
  };
  return { source, target, hasCopy, scans, diff };
}

/** Diff of two identical copies (the source and the restored target): chunk checksums vs client scans vs CHECKSUM TABLE. */
export function diffIdentical(context: BenchContext): Comparison {
  const { source, target, hasCopy, scans, diff } = sides(context);
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
        run: () => diff(),
      },
      scans,
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

/** The same diff with every row streamed and merged (what a diff does where chunks differ) vs the client scans. */
export function diffStreamed(context: BenchContext): Comparison {
  const { hasCopy, scans, diff } = sides(context);
  return {
    name: 'diff, every row streamed',
    rawBytes: context.dataset.datadirBytes,
    rows: context.dataset.rows,
    contenders: [
      {
        name: 'stepback diff --no-checksums',
        role: 'stepback',
        missing: async () => (await stepbackCommandMissing('diff')) ?? (await hasCopy()),
        run: () => diff('--no-checksums'),
      },
      scans,
    ],
  };
}
