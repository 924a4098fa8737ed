import { describe, expect, it } from 'vitest';
import { optionsError } from '../../agent/cli/command.ts';
import { runCli } from '../../agent/cli/main.ts';
import { ConsoleReporter, reportCrash } from '../../agent/report/console.ts';
import { NoBackupError } from '../../core/errors.ts';

function stream(isTTY = false) {
  const out = {
    text: '',
    isTTY,
    columns: 200,
    write: (t: string) => {
      out.text += t;
      return true;
    },
  };
  return out;
}

function reporter(options: { tty?: boolean; json?: boolean; quiet?: boolean; verbose?: boolean } = {}) {
  let time = 0;
  const stdout = stream();
  const stderr = stream(options.tty);
  const console = new ConsoleReporter({
    json: Boolean(options.json),
    quiet: Boolean(options.quiet),
    verbose: Boolean(options.verbose),
    stdout: stdout as never,
    stderr: stderr as never,
    now: () => time,
  });
  return { console, stdout, stderr, at: (ms: number) => (time = ms) };
}

const MiB = 1024 * 1024;
const copying = (bytesDone: number) => ({ phase: 'copying files', bytesDone, bytesTotal: 100 * MiB });

describe('progress', () => {
  it('is one redrawn line with bytes, rate and ETA on a terminal', () => {
    const { console, stderr, at } = reporter({ tty: true });
    console.progress(copying(0));
    at(100);
    console.progress(copying(5 * MiB)); // within 200 ms of the last draw: not drawn
    at(2000);
    console.progress(copying(40 * MiB));
    console.log('a log line');
    expect(stderr.text).toBe(
      '\r\x1b[2Kcopying files 0 B / 100.0 MiB (0%)' +
        '\r\x1b[2Kcopying files 40.0 MiB / 100.0 MiB (40%) 20.0 MiB/s ETA 3.0s' +
        '\r\x1b[2Ka log line\n',
    );
  });

  it('is a plain line at the start of a phase, every 10 s, and one saying it finished at its end, when not on a terminal', () => {
    const { console, stderr, at } = reporter();
    console.progress(copying(0));
    at(5000);
    console.progress(copying(10 * MiB));
    at(10_000);
    console.progress(copying(20 * MiB));
    at(11_000);
    console.progress(copying(100 * MiB));
    expect(stderr.text.split('\n')).toEqual([
      'copying files 0 B / 100.0 MiB (0%)',
      'copying files 20.0 MiB / 100.0 MiB (20%) 2.00 MiB/s ETA 40s',
      'copying files finished in 11s: 100.0 MiB 9.09 MiB/s',
      '',
    ]);
  });

  it('shows rows with their rate', () => {
    const { console, stderr, at } = reporter();
    console.progress({ phase: 'loading shop', rowsDone: 0, rowsTotal: 1000, itemsDone: 0, itemsTotal: 4 });
    at(10_000);
    console.progress({ phase: 'loading shop', rowsDone: 500, rowsTotal: 1000, itemsDone: 2, itemsTotal: 4 });
    expect(stderr.text).toContain('loading shop 500 / 1,000 rows 50 rows/s [2/4]');
  });

  it('is silent with --quiet, and still sent to a progress listener', () => {
    const seen: unknown[] = [];
    const stdout = stream();
    const stderr = stream(true);
    const quiet = new ConsoleReporter({
      json: false,
      quiet: true,
      verbose: false,
      stdout: stdout as never,
      stderr: stderr as never,
      onProgress: (update) => seen.push(update),
    });
    quiet.progress(copying(1));
    expect(stderr.text).toBe('');
    expect(seen).toEqual([copying(1)]);
  });
});

describe('results and errors', () => {
  it('prints one JSON object on the last stdout line with --json', async () => {
    const { console, stdout, stderr } = reporter({ json: true });
    console.progress(copying(0));
    await console.succeed({ name: 'b1', bytes: { raw: 1, stored: 1 } });
    expect(stdout.text).toBe('{"name":"b1","bytes":{"raw":1,"stored":1}}\n');
    expect(stderr.text).toContain('copying files');
  });

  it('says what happened and what to do, without a stack trace unless --verbose', async () => {
    const error = new NoBackupError('ks/0', undefined, { hint: 'take a backup first' });
    const plain = reporter();
    await plain.console.fail(error);
    expect(plain.stderr.text).toBe('error: no complete backup in ks/0\n  what to do: take a backup first\n');
    expect(plain.stdout.text).toBe('');

    const json = reporter({ json: true });
    await json.console.fail(error);
    expect(JSON.parse(json.stdout.text)).toEqual({
      error: { code: 'NO_BACKUP', message: 'no complete backup in ks/0', hint: 'take a backup first' },
    });

    const verbose = reporter({ verbose: true });
    await verbose.console.fail(error);
    expect(verbose.stderr.text).toMatch(
      /what to do: take a backup first\n {2}NoBackupError: no complete backup in ks\/0\n\s+at /,
    );
  });

  it('reports an error that escaped every handler as a bug, with its stack only when asked', () => {
    const out = stream();
    reportCrash(new TypeError('x is undefined'), out as never, false);
    expect(out.text).toBe(
      'error: x is undefined\n  what to do: this is a bug in stepback; run the command again with --verbose and report what it prints\n',
    );
    const verbose = stream();
    reportCrash(new TypeError('x is undefined'), verbose as never, true);
    expect(verbose.text).toMatch(/\nTypeError: x is undefined\n\s+at /);
  });
});

describe('flag errors', () => {
  it('name the flag, the rule, the value given and the help to read', async () => {
    const stdout = stream();
    const stderr = stream();
    const code = await runCli(
      [
        'backups',
        'prune',
        '--storage',
        'file:///x',
        '--dir',
        'a/0',
        '--keep-count',
        '1',
        '--keep-days',
        'soon',
      ],
      { stdout: stdout as never, stderr: stderr as never, env: {} },
    );
    expect(code).toBe(2);
    expect(stderr.text).toBe(
      'error: --keep-days: must be a number, got "soon"\n  what to do: see stepback backups prune --help\n',
    );
    const { z } = await import('zod');
    const schema = z.object({
      compression: z.enum(['zstd', 'gzip', 'none']),
      concurrency: z.coerce.number().min(1),
    });
    const enumError = schema.safeParse({ compression: 'lz4', concurrency: 2 }).error!;
    expect(optionsError(enumError, { compression: 'lz4' }, 'backup').message).toBe(
      '--compression: must be one of zstd, gzip, none, got "lz4"',
    );
    const smallError = schema.safeParse({ compression: 'zstd', concurrency: '0' }).error!;
    expect(optionsError(smallError, { concurrency: '0' }, 'backup').message).toBe(
      '--concurrency: must be at least 1, got "0"',
    );
  });
});
