import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type FaultRecord,
  formatFaultTable,
  readFaultRecords,
  recordFault,
  summarizeFaults,
} from '../support/faults.ts';
import { tempDir } from '../support/root.ts';

describe('the fault table', () => {
  it('sums the cases and measures of each fault, sorted by fault, keeping unmeasured ones apart from zero', () => {
    const records: FaultRecord[] = [
      { fault: 'disk full', cases: 1, survived: 1, rowsLost: 0, filesLeft: 0 },
      { fault: 'schema', cases: 300, survived: 299, rowsLost: null, filesLeft: null },
      { fault: 'disk full', cases: 1, survived: 0, rowsLost: 3, filesLeft: 2 },
      { fault: 'a disk', cases: 1, survived: 1, rowsLost: null, filesLeft: 0 },
    ];
    expect(summarizeFaults(records)).toEqual([
      { fault: 'a disk', cases: 1, survived: 1, rowsLost: null, filesLeft: 0 },
      { fault: 'disk full', cases: 2, survived: 1, rowsLost: 3, filesLeft: 2 },
      { fault: 'schema', cases: 300, survived: 299, rowsLost: null, filesLeft: null },
    ]);
  });

  it('prints one Markdown row per fault, a dash for what was not measured and the reason for a skipped fault', () => {
    const table = formatFaultTable([
      { fault: 'schema', cases: 300, survived: 300, rowsLost: null, filesLeft: null },
      { fault: 'disk full', cases: 0, survived: 0, rowsLost: null, filesLeft: null, skipped: 'not root' },
      { fault: 'restore', cases: 4, survived: 4, rowsLost: 0, filesLeft: 0 },
    ]);
    expect(table.split('\n')).toEqual([
      '| fault | cases | survived | rows lost | files left behind |',
      '| --- | ---: | ---: | ---: | ---: |',
      '| schema | 300 | 300 | – | – |',
      '| disk full | skipped: not root | | | |',
      '| restore | 4 | 4 | 0 | 0 |',
    ]);
  });

  it('appends each record as a line of the results file the runner names, and reads them back', async () => {
    const file = path.join(await tempDir('fault-results'), 'results.jsonl');
    const saved = process.env.STEPBACK_FAULTS_RESULTS;
    process.env.STEPBACK_FAULTS_RESULTS = file;
    try {
      recordFault({ fault: 'a', cases: 1, survived: 1, rowsLost: 0, filesLeft: 0 });
      recordFault({ fault: 'b', cases: 2, survived: 1, rowsLost: null, filesLeft: null });
    } finally {
      if (saved === undefined) delete process.env.STEPBACK_FAULTS_RESULTS;
      else process.env.STEPBACK_FAULTS_RESULTS = saved;
    }
    expect((await fs.readFile(file, 'utf8')).trim().split('\n')).toHaveLength(2);
    expect(readFaultRecords(file).map((r) => r.fault)).toEqual(['a', 'b']);
    expect(readFaultRecords(path.join(path.dirname(file), 'missing'))).toEqual([]);
  });
});
