import { describe, expect, it } from 'vitest';
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
      '    AgentBackup on replica: copying files 4.00 MiB / 4.00 MiB (100%) 1.00 MiB/s ETA 0.0s',
      '  ✓ AgentBackup[0] 4.0s',
      '  · ShardDone[0]',
      '  ✗ Summarize: NO_BACKUP: none in ks/0',
      '',
    ]);
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
    bytes: 20 * 1024 * 1024,
    throughput: '80.0 MiB/s',
    checks: [
      { name: 'backup', ok: true, detail: 'commerce/0/b1 from replica' },
      { name: 'replica put back', ok: true, detail: 'replicating, read_only=OFF' },
    ],
  };

  it('renders each execution with its time, bytes, throughput and every check', () => {
    expect(renderSummary([passing])).toBe(
      [
        'EXECUTION  STATUS     TIME  BYTES     THROUGHPUT  VERIFICATION',
        'Backup     SUCCEEDED  3.2s  20.0 MiB  80.0 MiB/s  PASS backup: commerce/0/b1 from replica',
        '                                                  PASS replica put back: replicating, read_only=OFF',
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
