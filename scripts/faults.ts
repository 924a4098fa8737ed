// `npm run faults`: every fault test (test/faults/) with FAULTS_FULL=1 — many more generated cases —
// then the table of what each fault did: cases, survived, rows lost, files left behind.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatFaultTable, readFaultRecords, summarizeFaults } from '../test/support/faults.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(path.join(os.tmpdir(), 'stepback-faults-'));
const results = path.join(work, 'results.jsonl');
try {
  const vitest = spawnSync(
    process.execPath,
    [path.join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', 'test/faults', ...process.argv.slice(2)],
    {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, FAULTS_FULL: '1', STEPBACK_FAULTS_RESULTS: results },
    },
  );
  const rows = summarizeFaults(readFaultRecords(results));
  process.stdout.write(`\n${formatFaultTable(rows)}\n`);
  const failed = rows.filter((row) => !row.skipped && row.survived < row.cases);
  if (failed.length > 0) process.stdout.write(`\n${failed.length} fault(s) not survived in every case\n`);
  process.exitCode = vitest.status ?? 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
