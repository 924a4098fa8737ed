import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createPrivateInstance, type PrivateInstance, serverBinaries } from '../local/private-instance.ts';
import { diffIdentical, diffStreamed } from './comparisons/diff.ts';
import { multirestore, snapshot } from './comparisons/logical.ts';
import { onlineBackup, onlineRestore } from './comparisons/online.ts';
import { physicalBackup, physicalRestore } from './comparisons/physical.ts';
import { catchup, reshardCutover } from './comparisons/reshard.ts';
import { startup } from './comparisons/startup.ts';
import { type BenchContext, buildAgentBundle, projectRoot } from './context.ts';
import { ensureDataset } from './dataset.ts';
import { type Comparison, type ComparisonResult, runComparison } from './harness.ts';
import { renderChart, renderResults } from './report.ts';

/**
 * `npm run bench`: stepback side by side with the tools people run today, on the same sysbench data,
 * in one run, reporting ratios (which hold on a noisy machine better than absolute times).
 */

const usage = `usage: npm run bench -- [--table-size N | --quick] [--rounds R] [--only name,…] [--keep]
  --table-size N  rows per table, 8 tables (default 500000, about 1.2 GB of datadir)
  --quick         100000 rows per table, for a run of a few minutes
  --rounds R      runs of each tool per comparison, alternated (default 3)
  --only a,b      comparisons to run: backup, restore, online, onlinerestore, diff, diffstream,
                  snapshot, snapshot4, multirestore, catchup, reshard, startup (default all)
  --keep          keep the work directory`;

const { values } = parseArgs({
  options: {
    'table-size': { type: 'string' },
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
    only: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const tableSize = Number(values['table-size'] ?? (values.quick ? 100_000 : 500_000));
const rounds = Number(values.rounds);
if (!Number.isInteger(tableSize) || tableSize < 1 || !Number.isInteger(rounds) || rounds < 1) {
  process.stderr.write(`${usage}\n`);
  process.exit(2);
}
const only = values.only?.split(',').map((s) => s.trim());
const log = (line: string) => process.stderr.write(`${line}\n`);

/** The 1-minute load average: a busy machine shows in every absolute figure (less so in the ratios). */
const load = () => Number(os.loadavg()[0]!.toFixed(2));
const loadAtStart = load();
const cacheDir = path.join(projectRoot, 'bench', '.cache');
const dataset = await ensureDataset(cacheDir, tableSize, log);
const work = await fs.mkdtemp(path.join(cacheDir, 'work-'));
const instances: PrivateInstance[] = [];
const results: ComparisonResult[] = [];
try {
  log('building the agent bundle stepback runs as on the DB hosts');
  await buildAgentBundle(work);
  log('starting the source (a copy of the dataset) and an empty target');
  const source = await createPrivateInstance({ parent: work, name: 'source', seedDatadir: dataset.datadir });
  instances.push(source);
  const target = await createPrivateInstance({ parent: work, name: 'target' });
  instances.push(target);
  const context: BenchContext = { dataset, source, target, work, log };
  const comparisons: [string, () => Comparison][] = [
    ['backup', () => physicalBackup(context)],
    ['restore', () => physicalRestore(context)],
    ['online', () => onlineBackup(context)],
    ['onlinerestore', () => onlineRestore(context)],
    ['diff', () => diffIdentical(context)],
    ['diffstream', () => diffStreamed(context)],
    ['snapshot', () => snapshot(context, 1)],
    ['snapshot4', () => snapshot(context, 4)],
    ['multirestore', () => multirestore(context)],
    ['catchup', () => catchup(context)],
    ['reshard', () => reshardCutover(context)],
    ['startup', () => startup()],
  ];
  for (const [key, make] of comparisons) {
    if (only && !only.includes(key)) continue;
    const comparison = make();
    log(`${comparison.name}:`);
    results.push(await runComparison(comparison, rounds, log));
  }
} finally {
  for (const instance of instances) await instance.kill();
  if (!values.keep) await fs.rm(work, { recursive: true, force: true });
}

const binaries = await serverBinaries();
const date = new Date().toISOString().slice(0, 19).replace(/:/g, '');
const machine = {
  cpus: os.cpus().length,
  cpu: os.cpus()[0]?.model,
  memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
  node: process.version,
  server: `${binaries.flavor} ${binaries.version}`,
  loadAverage: { start: loadAtStart, end: load() },
};
const resultsDir = path.join(projectRoot, 'bench', 'results');
await fs.mkdir(resultsDir, { recursive: true });
const json = path.join(resultsDir, `${date}.json`);
await fs.writeFile(
  json,
  `${JSON.stringify({ date, tableSize, tables: 8, rounds, machine, dataset: { rows: dataset.rows, datadirBytes: dataset.datadirBytes }, results }, null, 2)}\n`,
);
const chart = path.join(resultsDir, `${date}.svg`);
await fs.writeFile(
  chart,
  renderChart(
    results,
    `stepback vs peers — ${dataset.rows.toLocaleString('en-US')} rows, ${machine.cpus} cores`,
  ),
);
process.stdout.write(
  `${renderResults(results)}\n\nmachine: ${machine.cpus} × ${machine.cpu}, ${machine.memoryGiB} GiB, ${machine.server}, load ${machine.loadAverage.start} at the start and ${machine.loadAverage.end} at the end\nresults: ${path.relative(process.cwd(), json)}\nchart:   ${path.relative(process.cwd(), chart)}\n`,
);
