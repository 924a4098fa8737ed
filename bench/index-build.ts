import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createPrivateInstance } from '../local/private-instance.ts';
import { median } from './measure.ts';

/**
 * `node bench/index-build.ts [ROWS…]`: for each table size, loads the same file into a sysbench-shaped
 * InnoDB table (`KEY k_1 (k)` over random values) with the index present, and into the table without
 * it followed by `ALTER TABLE … ADD KEY`, alternating, three rounds, in a private mariadbd. What
 * multirestore does per table size (INDEXES_AFTER_LOAD_ROWS) follows from this: see bench/README.md.
 */

const sizes = process.argv.slice(2).map(Number);
if (sizes.length === 0) sizes.push(2_000, 20_000, 50_000, 200_000, 1_000_000);
const rounds = 3;
const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'stepback-index-build-'));
const instance = await createPrivateInstance({ parent, name: 'index-build' });
const table = (name: string, index: boolean) =>
  `CREATE TABLE ${name} (id INT NOT NULL AUTO_INCREMENT, k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', PRIMARY KEY (id)${index ? ', KEY k_1 (k)' : ''}) ENGINE=InnoDB`;
try {
  const c = await instance.connect();
  await c.query('CREATE DATABASE bench');
  await c.query('USE bench');
  process.stdout.write(
    '| rows | index during the load (min–max) | load, then ADD KEY (min–max) | after / during |\n| --- | --- | --- | --- |\n',
  );
  for (const rows of sizes) {
    await c.query('DROP TABLE IF EXISTS source_rows');
    await c.query(table('source_rows', false));
    await c.query(
      `INSERT INTO source_rows SELECT seq, FLOOR(RAND() * ${rows}), MD5(RAND()), MD5(RAND()) FROM seq_1_to_${rows}`,
    );
    const file = path.join(instance.filesDir, `rows-${rows}.csv`);
    await c.query(`SELECT * FROM source_rows INTO OUTFILE '${file}'`);
    const seconds = { during: [] as number[], after: [] as number[] };
    for (let round = 0; round < rounds; round++) {
      for (const mode of ['during', 'after'] as const) {
        await c.query('DROP TABLE IF EXISTS loaded');
        await c.query(table('loaded', mode === 'during'));
        const started = performance.now();
        await c.query(`LOAD DATA INFILE '${file}' INTO TABLE loaded`);
        if (mode === 'after') await c.query('ALTER TABLE loaded ADD KEY k_1 (k)');
        seconds[mode].push((performance.now() - started) / 1000);
      }
    }
    await fs.rm(file);
    const [during, after] = [median(seconds.during), median(seconds.after)];
    const range = (values: number[]) => `${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)}`;
    process.stdout.write(
      `| ${rows.toLocaleString('en-US')} | ${during.toFixed(2)} s (${range(seconds.during)}) | ${after.toFixed(2)} s (${range(seconds.after)}) | ${(after / during).toFixed(2)} |\n`,
    );
  }
  await c.end();
  process.stdout.write(
    `\nload average at the end: ${os.loadavg()[0]!.toFixed(2)} on ${os.cpus().length} cores\n`,
  );
} finally {
  await instance.dispose();
  await fs.rm(parent, { recursive: true, force: true });
}
