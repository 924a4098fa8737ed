// Measures `stepback diff` on two private MariaDB servers: identical tables confirmed by chunk
// checksums (rows/s), the same tables with every row streamed and merged, against two ordered
// `mariadb --quick` scans to /dev/null, and the diff's peak memory at two table sizes.
//
//   npm run bench:diff -- --rows 1000000 --concurrency 2 --chunk-rows 100000
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { diffDatabases } from '../agent/diff/engine.ts';
import { silentLogger } from '../core/log.ts';
import { createTestInstance, type TestInstance } from '../test/support/mariadb.ts';
import { tempDir } from '../test/support/root.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    concurrency: { type: 'string', default: '2' },
    'chunk-rows': { type: 'string', default: '100000' },
    runs: { type: 'string', default: '3' },
  },
});
const rows = Number(values.rows);
const concurrency = Number(values.concurrency);
const chunkRows = Number(values['chunk-rows']);
const runs = Number(values.runs);

const table = (name: string, count: number) => [
  `CREATE TABLE ${name} (
     id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
     customer_id INT NOT NULL,
     email VARCHAR(64) NOT NULL,
     note VARCHAR(200) NULL,
     amount DECIMAL(12,2) NOT NULL,
     placed DATETIME NOT NULL,
     status TINYINT NOT NULL
   )`,
  `INSERT INTO ${name} SELECT seq, seq % 50000, CONCAT('user', seq, '@example.com'),
          IF(seq % 4 = 0, NULL, REPEAT(CHAR(97 + seq % 26), 20 + seq % 40)), (seq % 100000) / 100,
          '2024-01-01' + INTERVAL seq SECOND, seq % 5
     FROM seq_1_to_${count}`,
];

async function load(instance: TestInstance, statements: string[]): Promise<void> {
  const connection = await instance.connect();
  try {
    await connection.query('CREATE DATABASE IF NOT EXISTS bench');
    await connection.query('USE bench');
    for (const sql of statements) await connection.query(sql);
    await connection.query('ANALYZE TABLE small, big');
  } finally {
    await connection.end();
  }
}

/** Runs `work`, sampling this process's RSS; returns seconds and the peak RSS in MiB. */
async function measure(
  work: () => Promise<unknown>,
): Promise<{ seconds: number; startMiB: number; peakMiB: number }> {
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const started = performance.now();
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return {
    seconds: (performance.now() - started) / 1000,
    startMiB: Math.round(start / 2 ** 20),
    peakMiB: Math.round(peak / 2 ** 20),
  };
}

function scan(instance: TestInstance, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'mariadb',
      [
        `--defaults-file=${instance.cnf}`,
        '--quick',
        '--batch',
        'bench',
        '-e',
        `SELECT * FROM ${name} ORDER BY id`,
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`mariadb exited ${code}`))));
  });
}

const best = <T extends { seconds: number }>(results: T[]): T =>
  results.reduce((a, b) => (b.seconds < a.seconds ? b : a));

async function repeat<T extends { seconds: number }>(work: () => Promise<T>): Promise<T> {
  const results: T[] = [];
  for (let i = 0; i < runs; i++) results.push(await work());
  return best(results);
}

async function main(): Promise<void> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'stepback-bench-'));
  process.env.STEPBACK_TEST_ROOT = root;
  const instances = await Promise.all(
    ['bench-left', 'bench-right'].map(async (name) =>
      createTestInstance({
        name,
        extraCnf: [`tmpdir=${await tempDir(`${name}-tmp`)}`, 'innodb-buffer-pool-size=512M'],
      }),
    ),
  );
  const [left, right] = instances as [TestInstance, TestInstance];
  try {
    const small = Math.max(1000, Math.round(rows / 4));
    process.stderr.write(`loading ${rows} + ${small} rows on each side\n`);
    await Promise.all([left, right].map((i) => load(i, [...table('big', rows), ...table('small', small)])));

    const diff = (name: string, checksums: boolean) => async () => {
      let processed = 0;
      const { seconds, startMiB, peakMiB } = await measure(async () => {
        const outcome = await diffDatabases({
          left: { socket: left.socket, user: 'root', database: 'bench' },
          right: { socket: right.socket, user: 'root', database: 'bench' },
          tables: [name],
          concurrency,
          chunkRows,
          checksums,
          logger: silentLogger,
        });
        if (outcome.result.total.matching !== outcome.result.total.processed)
          throw new Error('tables differ');
        processed = outcome.result.total.processed;
      });
      return { seconds, startMiB, peakMiB, rowsPerSecond: Math.round(processed / seconds) };
    };

    const checksummed = await repeat(diff('big', true));
    const streamed = await repeat(diff('big', false));
    const streamedSmall = await repeat(diff('small', false));
    const scans = await repeat(async () =>
      measure(() => Promise.all([scan(left, 'big'), scan(right, 'big')])),
    );
    const scansInTurn = await repeat(async () =>
      measure(async () => {
        await scan(left, 'big');
        await scan(right, 'big');
      }),
    );

    const result = {
      rows,
      concurrency,
      chunkRows,
      runs,
      identicalWithChecksums: checksummed,
      identicalStreamed: streamed,
      identicalStreamedQuarterTable: { rows: small, ...streamedSmall },
      twoConcurrentClientScans: { seconds: scans.seconds },
      twoClientScansInTurn: { seconds: scansInTurn.seconds },
      streamedVersusConcurrentScans: Number((streamed.seconds / scans.seconds).toFixed(2)),
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await Promise.all(instances.map((i) => i.dispose()));
    await fs.rm(root, { recursive: true, force: true });
  }
}

await main();
