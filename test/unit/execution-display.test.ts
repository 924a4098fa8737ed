import { describe, expect, it } from 'vitest';
import type { Progress } from '../../agent/report/reporter.ts';
import { allPassed, type ExecutionReport, renderSummary } from '../../local/demo/summary.ts';
import { ExecutionDisplay } from '../../local/display.ts';

function stream(isTTY: boolean) {
  const out = {
    text: '',
    isTTY,
    columns: 200,
    write: (t: string) => {
      out.text += t;
    },
  };
  return out;
}

describe('the execution display', () => {
  it('shows states as they are entered and left, and agent progress as plain lines at most every interval', () => {
    let time = 0;
    const out = stream(false);
    const display = new ExecutionDisplay(out, {
      now: () => time,
      plainIntervalMs: 3000,
      hostNames: new Map([['/d/replica/my.cnf', 'replica']]),
    });
    const progress = (bytesDone: number) =>
      display.event({
        type: 'progress',
        state: 'AgentBackup',
        host: '/d/replica/my.cnf',
        progress: { phase: 'copying files', bytesDone, bytesTotal: 4 * 1024 * 1024 },
      });
    display.event({ type: 'entered', state: 'AgentBackup', stateType: 'Task', index: 0 });
    progress(0);
    time = 1000;
    progress(1024 * 1024);
    time = 3500;
    progress(2 * 1024 * 1024);
    time = 4000;
    progress(4 * 1024 * 1024);
    display.event({
      type: 'exited',
      state: 'AgentBackup',
      stateType: 'Task',
      index: 0,
      seconds: 4,
      output: {},
    });
    display.event({
      type: 'exited',
      state: 'ShardDone',
      stateType: 'Pass',
      index: 0,
      seconds: 0,
      output: {},
    });
    display.event({ type: 'failed', state: 'Summarize', error: 'NO_BACKUP', cause: 'none in ks/0' });
    expect(out.text.split('\n')).toEqual([
      '  ▶ AgentBackup[0]',
      '    AgentBackup on replica: copying files 0 B / 4.00 MiB (0%)',
      '    AgentBackup on replica: copying files 2.00 MiB / 4.00 MiB (50%) 585.1 KiB/s ETA 3.5s',
      '    AgentBackup on replica: copying files finished in 4.0s: 4.00 MiB 1.00 MiB/s',
      '  ✓ AgentBackup[0] 4.0s',
      '  · ShardDone[0]',
      '  ✗ Summarize: NO_BACKUP: none in ks/0',
      '',
    ]);
  });

  it('shows a state that failed into its Catch as failed only, and one that failed then retried as done', () => {
    const out = stream(false);
    const display = new ExecutionDisplay(out);
    display.event({ type: 'entered', state: 'ValidateInput', stateType: 'Task' });
    display.event({ type: 'failed', state: 'ValidateInput', error: 'USAGE', cause: 'input.shard: required' });
    display.event({ type: 'caught', state: 'ValidateInput' });
    display.event({ type: 'exited', state: 'ValidateInput', stateType: 'Task', seconds: 0.1, output: {} });
    display.event({ type: 'entered', state: 'AgentBackup', stateType: 'Task', index: 0 });
    display.event({ type: 'failed', state: 'AgentBackup', index: 0, error: 'INSTANCE_BUSY', cause: 'held' });
    display.event({ type: 'retried', state: 'AgentBackup', index: 0, attempt: 1 });
    display.event({
      type: 'exited',
      state: 'AgentBackup',
      stateType: 'Task',
      index: 0,
      seconds: 2,
      output: {},
    });
    expect(out.text.split('\n')).toEqual([
      '  ▶ ValidateInput',
      '  ✗ ValidateInput: USAGE: input.shard: required',
      '  ↳ ValidateInput: error caught, taking the failure path',
      '  ▶ AgentBackup[0]',
      '  ✗ AgentBackup[0]: INSTANCE_BUSY: held',
      '  ↻ AgentBackup[0]: retry 1',
      '  ✓ AgentBackup[0] 2.0s',
      '',
    ]);
  });

  it('without a terminal, shows a phase finished once, and finishes one that never reached its total when its state ends', () => {
    let time = 0;
    const out = stream(false);
    const display = new ExecutionDisplay(out, { now: () => time });
    const progress = (update: Progress) =>
      display.event({ type: 'progress', state: 'AgentDiff', host: 'dest', progress: update });
    progress({ phase: 'loading', rowsDone: 0, rowsTotal: 10, itemsDone: 0, itemsTotal: 1 });
    time = 1000;
    progress({ phase: 'loading', rowsDone: 10, rowsTotal: 10, itemsDone: 1, itemsTotal: 1 });
    progress({ phase: 'loading', rowsDone: 10, rowsTotal: 10, itemsDone: 1, itemsTotal: 1 });
    progress({ phase: 'comparing t', rowsDone: 0, rowsTotal: 100 });
    time = 3000;
    progress({ phase: 'comparing t', rowsDone: 60, rowsTotal: 100 });
    display.event({ type: 'exited', state: 'AgentDiff', stateType: 'Task', seconds: 3, output: {} });
    expect(out.text.split('\n')).toEqual([
      '    AgentDiff on dest: loading 0 / 10 rows [0/1]',
      '    AgentDiff on dest: loading finished in 1.0s: 10 rows 10 rows/s [1/1]',
      '    AgentDiff on dest: comparing t 0 / 100 rows',
      '    AgentDiff on dest: comparing t finished in 2.0s: 60 rows 30 rows/s',
      '  ✓ AgentDiff 3.0s',
      '',
    ]);
  });

  it('does not cut the progress line on a terminal that reports 0 columns', () => {
    const out = stream(true);
    out.columns = 0;
    const display = new ExecutionDisplay(out);
    display.event({ type: 'progress', state: 'S', host: 'h', progress: { phase: 'loading', rowsDone: 5 } });
    expect(out.text).toBe('\r\x1b[2K    S on h: loading 5 rows');
  });

  it('redraws one progress line on a terminal and clears it before the next line', () => {
    let time = 0;
    const out = stream(true);
    const display = new ExecutionDisplay(out, { now: () => time });
    const progress = (rowsDone: number) =>
      display.event({
        type: 'progress',
        state: 'AgentMultirestore',
        host: 'dest',
        progress: { phase: 'loading shop', rowsDone, rowsTotal: 100 },
      });
    progress(0);
    time = 500;
    progress(50);
    display.line('done');
    expect(out.text).toBe(
      '\r\x1b[2K    AgentMultirestore on dest: loading shop 0 / 100 rows' +
        '\r\x1b[2K    AgentMultirestore on dest: loading shop 50 / 100 rows 100 rows/s' +
        '\r\x1b[2Kdone\n',
    );
  });
});

describe('the demo summary', () => {
  const passing: ExecutionReport = {
    machine: 'Backup',
    status: 'SUCCEEDED',
    seconds: 3.2,
    bytes: { raw: 80 * 1024 * 1024, stored: 20 * 1024 * 1024 },
    throughput: {
      unit: 'bytes',
      amount: 80 * 1024 * 1024,
      counted: 'raw',
      seconds: 1,
      during: 'agent backup',
    },
    checks: [
      { name: 'backup', ok: true, detail: 'commerce/0/b1 from replica' },
      { name: 'replica put back', ok: true, detail: 'replicating, read_only=OFF' },
    ],
  };

  it('renders each execution with its time, raw and stored bytes, a throughput that names what it divides, and every check', () => {
    const reshard: ExecutionReport = {
      machine: 'Reshard',
      status: 'SUCCEEDED',
      seconds: 8,
      bytes: { stored: 3 * 1024 * 1024 },
      throughput: { unit: 'rows', amount: 2000, counted: 'rows loaded', seconds: 8, during: 'execution' },
      checks: [{ name: 'diff -80', ok: true, detail: '1,000 rows match' }],
    };
    expect(renderSummary([passing, reshard])).toBe(
      [
        'EXECUTION  STATUS     TIME  RAW       STORED    THROUGHPUT                                       VERIFICATION',
        'Backup     SUCCEEDED  3.2s  80.0 MiB  20.0 MiB  80.0 MiB/s = raw 80.0 MiB / agent backup 1.0s    PASS backup: commerce/0/b1 from replica',
        '                                                                                                 PASS replica put back: replicating, read_only=OFF',
        'Reshard    SUCCEEDED  8.0s  -         3.00 MiB  250 rows/s = 2,000 rows loaded / execution 8.0s  PASS diff -80: 1,000 rows match',
      ].join('\n'),
    );
    expect(allPassed([passing])).toBe(true);
  });

  it('fails the run on a failed check or a failed execution, and shows why', () => {
    const failedCheck = { ...passing, checks: [{ name: 'diff -80', ok: false, detail: '3 differ' }] };
    expect(allPassed([passing, failedCheck])).toBe(false);
    expect(renderSummary([failedCheck])).toContain('FAIL diff -80: 3 differ');
    const failedRun: ExecutionReport = {
      machine: 'Restore',
      status: 'FAILED',
      seconds: 1,
      error: 'NO_BACKUP: no complete backup in commerce/0',
      checks: [],
    };
    expect(allPassed([passing, failedRun])).toBe(false);
    expect(renderSummary([failedRun])).toContain(
      'FAIL execution: NO_BACKUP: no complete backup in commerce/0',
    );
    expect(allPassed([])).toBe(false);
  });
});
