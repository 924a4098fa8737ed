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
    expect(lines[2]).toMatch(/\(100%\)/);
    expect(lines[3]).toBe('starting mysqld');
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
