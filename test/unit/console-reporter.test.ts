import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConsoleReporter, describeProgress } from '../../agent/report/console.ts';
import { NoBackupError } from '../../core/errors.ts';

function capture(isTTY = false) {
  const chunks: string[] = [];
  const stream = Object.assign(
    new Writable({
      write(chunk, _encoding, done) {
        chunks.push(chunk.toString());
        done();
      },
    }),
    { isTTY },
  );
  return { stream, text: () => chunks.join('') };
}

function reporter(options: { json?: boolean; quiet?: boolean; verbose?: boolean; tty?: boolean } = {}) {
  const stdout = capture();
  const stderr = capture(options.tty);
  let now = 0;
  const instance = new ConsoleReporter({
    json: Boolean(options.json),
    quiet: Boolean(options.quiet),
    verbose: Boolean(options.verbose),
    stdout: stdout.stream,
    stderr: stderr.stream,
    now: () => now,
  });
  return { instance, stdout, stderr, advance: (ms: number) => (now += ms) };
}

describe('ConsoleReporter', () => {
  it('writes plain progress lines at most every ten seconds, plus each new phase and each finish', () => {
    const { instance, stderr, advance } = reporter();
    instance.progress({ phase: 'copying files', bytesDone: 0, bytesTotal: 100 });
    advance(1000);
    instance.progress({ phase: 'copying files', bytesDone: 10, bytesTotal: 100 });
    advance(10_000);
    instance.progress({ phase: 'copying files', bytesDone: 60, bytesTotal: 100 });
    advance(1000);
    instance.progress({ phase: 'copying files', bytesDone: 100, bytesTotal: 100 });
    instance.progress({ phase: 'starting mysqld' });
    advance(1000);
    instance.progress({ phase: 'starting mysqld' });
    const lines = stderr.text().trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[1]).toMatch(/^copying files 60 B \/ 100 B \(60%\)/);
    expect(lines[2]).toBe('copying files finished in 12s: 100 B 8 B/s');
    expect(lines[3]).toBe('starting mysqld');
  });

  it('without a terminal, ends each phase with one line that says it finished, never a repeated 100% with an ETA', async () => {
    const { instance, stderr, advance } = reporter();
    instance.progress({
      phase: 'copying files',
      bytesDone: 0,
      bytesTotal: 2048,
      itemsDone: 0,
      itemsTotal: 2,
    });
    advance(2000);
    // The bytes of the last file arrive before it is counted: not finished until both are.
    instance.progress({
      phase: 'copying files',
      bytesDone: 2048,
      bytesTotal: 2048,
      itemsDone: 1,
      itemsTotal: 2,
    });
    instance.progress({
      phase: 'copying files',
      bytesDone: 2048,
      bytesTotal: 2048,
      itemsDone: 2,
      itemsTotal: 2,
    });
    instance.progress({
      phase: 'copying files',
      bytesDone: 2048,
      bytesTotal: 2048,
      itemsDone: 2,
      itemsTotal: 2,
    });
    // Rows counted against the server's estimate never reach it: the next phase finishes it.
    instance.progress({ phase: 'comparing orders', rowsDone: 0, rowsTotal: 1000 });
    advance(1000);
    instance.progress({ phase: 'comparing orders', rowsDone: 990, rowsTotal: 1000 });
    instance.progress({ phase: 'comparing lines', rowsDone: 0, rowsTotal: 10 });
    advance(500);
    instance.progress({ phase: 'comparing lines', rowsDone: 12, rowsTotal: 12 });
    await instance.succeed({});
    expect(stderr.text().trimEnd().split('\n')).toEqual([
      'copying files 0 B / 2.00 KiB (0%) [0/2]',
      'copying files finished in 2.0s: 2.00 KiB 1.00 KiB/s [2/2]',
      'comparing orders 0 / 1,000 rows',
      'comparing orders finished in 1.0s: 990 rows 990 rows/s',
      'comparing lines 0 / 10 rows',
      'comparing lines finished in 0.5s: 12 rows 24 rows/s',
    ]);
    expect(stderr.text()).not.toContain('ETA');
  });

  it('does not cut the line on a terminal that reports no width', () => {
    const { instance, stderr } = reporter({ tty: true });
    Object.assign(stderr.stream, { columns: 0 });
    instance.progress({ phase: 'loading', rowsDone: 5, itemsDone: 1, itemsTotal: 3 });
    expect(stderr.text()).toBe('\r\x1b[2Kloading 5 rows [1/3]');
  });

  it('redraws one line on a terminal and clears it before the result', async () => {
    const { instance, stderr, stdout } = reporter({ tty: true });
    instance.progress({ phase: 'loading', rowsDone: 5, itemsDone: 1, itemsTotal: 3 });
    await instance.succeed({ rows: 5 });
    expect(stderr.text()).toMatch(/^\r\x1b\[2Kloading 5 rows \[1\/3\]\r\x1b\[2K$/);
    expect(JSON.parse(stdout.text())).toEqual({ rows: 5 });
  });

  it('prints nothing but the result with --quiet, and the result as one JSON line with --json', async () => {
    const quiet = reporter({ quiet: true, json: true });
    quiet.instance.progress({ phase: 'copying files', bytesDone: 1, bytesTotal: 2 });
    await quiet.instance.succeed({ name: 'b1' });
    expect(quiet.stderr.text()).toBe('');
    expect(quiet.stdout.text()).toBe('{"name":"b1"}\n');
  });

  it('says what failed and what to do, without a stack trace unless --verbose', async () => {
    const error = new NoBackupError('ks/0', 'no complete backup in ks/0', { hint: 'run a backup first' });
    const plain = reporter({ json: true });
    await plain.instance.fail(error);
    expect(plain.stderr.text()).toBe('error: no complete backup in ks/0\n  what to do: run a backup first\n');
    expect(JSON.parse(plain.stdout.text())).toEqual({
      error: { code: 'NO_BACKUP', message: 'no complete backup in ks/0', hint: 'run a backup first' },
    });
    const verbose = reporter({ verbose: true });
    await verbose.instance.fail(error);
    expect(verbose.stderr.text()).toMatch(/\n\s+NoBackupError: no complete backup[\s\S]*\n\s+at /);
  });
});

describe('describeProgress', () => {
  it('shows rate and ETA once bytes have moved', () => {
    expect(
      describeProgress({ phase: 'copying', bytesDone: 50 * 1024 ** 2, bytesTotal: 100 * 1024 ** 2 }, 5),
    ).toBe('copying 50.0 MiB / 100.0 MiB (50%) 10.0 MiB/s ETA 5.0s');
  });
});
