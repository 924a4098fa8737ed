import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStepback, stepbackBin } from '../support/cli.ts';
import { physicalManifest } from '../support/manifests.ts';
import { tempDir } from '../support/root.ts';
import { startS3, type TestS3 } from '../support/s3.ts';

let s3: TestS3;

beforeAll(async () => {
  s3 = await startS3();
});

afterAll(async () => {
  await s3?.stop();
});

describe('stepback CLI', () => {
  it('prints help naming its commands', async () => {
    const run = await runStepback(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('backups');
  });

  it('prints [] for an empty directory with --json', async () => {
    const run = await runStepback([
      'backups',
      'list',
      '--storage',
      `file://${await tempDir('cli')}`,
      '--dir',
      'a/0',
      '--json',
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('[]\n');
  });

  it('lists complete and incomplete backups from S3 as JSON and as a table', async () => {
    const storage = s3.storage('cli');
    const done = await storage.startBackup('ks/0', '2026-11-24.100000.db1');
    await done.writeFile('0000', () => Readable.from([Buffer.from('x')]));
    await done.endBackup(physicalManifest({ name: done.name, dir: 'ks/0' }));
    const half = await storage.startBackup('ks/0', '2026-11-24.110000.db1');
    await half.writeFile('0000', () => Readable.from([Buffer.from('x')]));
    await storage.close();

    const json = await runStepback(
      ['backups', 'list', '--storage', 's3://stepback/cli', '--dir', 'ks/0', '--json'],
      {
        env: s3.env,
      },
    );
    expect(json.code).toBe(0);
    expect(json.json).toEqual([
      expect.objectContaining({
        name: '2026-11-24.100000.db1',
        complete: true,
        engine: 'physical',
        position: '0-1-100',
      }),
      expect.objectContaining({ name: '2026-11-24.110000.db1', complete: false }),
    ]);

    const table = await runStepback(['backups', 'list', '--storage', s3.url('cli'), '--dir', 'ks/0'], {
      env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' },
    });
    expect(table.code).toBe(0);
    const lines = table.stdout.split('\n');
    expect(lines[0]).toMatch(/^NAME +FINISHED \(UTC\) +ENGINE +RAW +STORED +POSITION +STATE +DRILL$/);
    expect(lines[1]).toMatch(
      /^2026-11-24\.100000\.db1 +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +physical +.* 0-1-100 +complete +never$/,
    );
    expect(lines[2]).toMatch(/^2026-11-24\.110000\.db1 +- +- +- +- +- +INCOMPLETE +-$/);
    expect(table.stdout).toContain('2 backup(s) in ks/0: 1 complete, 1 incomplete');
    expect(table.stdout).toContain(
      '  2026-11-24.110000.db1: backup ks/0/2026-11-24.110000.db1: has no MANIFEST',
    );
  });

  it('exits 2 on usage errors with a message naming the flag', async () => {
    const unknown = await runStepback([
      'backups',
      'list',
      '--storage',
      'file:///tmp/x',
      '--dir',
      'a/0',
      '--bogus',
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("'--bogus'");

    const missing = await runStepback(['backups', 'list', '--storage', 'file:///tmp/x']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--dir');

    const bad = await runStepback(['backups', 'list', '--storage', 'file:///tmp/x', '--dir', '../../etc']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--dir:');

    const scheme = await runStepback(['backups', 'list', '--storage', 'ftp://x/y', '--dir', 'a/0']);
    expect(scheme.code).toBe(2);
    expect(scheme.stderr).toContain('unknown scheme');
  });

  it('reports a mistyped flag as unknown, with the flag it resembles, before a required flag it leaves missing', async () => {
    for (const typo of ['--defaults-fle', '--defaults-fle=/etc/my.cnf']) {
      const run = await runStepback([
        'restore',
        ...(typo.includes('=') ? [typo] : [typo, '/etc/my.cnf']),
        '--storage',
        'file:///tmp/x',
        '--dir',
        'a/0',
      ]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain("error: unknown option '--defaults-fle'");
      expect(run.stderr).toContain('(Did you mean --defaults-file?)');
      expect(run.stderr).not.toContain('not specified');
    }
    const missing = await runStepback(['restore', '--storage', 'file:///tmp/x', '--dir', 'a/0']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("required option '--defaults-file <path>' not specified");
  });

  it('says what a storage URL looks like when one is malformed', async () => {
    const s3 = await runStepback(['backups', 'list', '--storage', 's3:/bucket/x', '--dir', 'a/0']);
    expect(s3.code).toBe(2);
    expect(s3.stderr).toContain('an S3 URL is s3://bucket/prefix');
    expect(s3.stderr).toContain('what to do: two slashes, then the bucket: s3://bucket/x');
    const file = await runStepback(['backups', 'list', '--storage', 'file://var/backups', '--dir', 'a/0']);
    expect(file.code).toBe(2);
    expect(file.stderr).toContain(
      'what to do: three slashes, then the absolute directory: file:///var/backups',
    );
  });

  it('exits 1 with a storage error that says what failed, not a stack trace', async () => {
    const notADirectory = path.join(await tempDir('cli-unreadable'), 'file');
    await fs.writeFile(notADirectory, 'x');
    const run = await runStepback([
      'backups',
      'list',
      '--storage',
      `file://${notADirectory}`,
      '--dir',
      'a/0',
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`error: cannot list ${notADirectory}/a/0`);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('keeps the callback descriptor when it re-runs itself under Node 22', async () => {
    const olderNode = `if (!process.env.STEPBACK_RELAUNCHED) Object.defineProperty(process.versions, 'node', { value: '20.0.0' });`;
    const child = spawn(
      process.execPath,
      [
        '--import',
        `data:text/javascript,${encodeURIComponent(olderNode)}`,
        stepbackBin,
        'run',
        '--task-token',
        't0k',
        '--callback-fd',
        '3',
      ],
      { env: { ...process.env, SSM_request: 'e30=' }, stdio: ['ignore', 'ignore', 'pipe', 'pipe'] },
    );
    let callbacks = '';
    child.stdio[3]?.on('data', (data: Buffer) => {
      callbacks += data.toString();
    });
    const code = await new Promise((resolve) => child.once('close', resolve));
    expect(code).toBe(2);
    expect(JSON.parse(callbacks.trim())).toMatchObject({ callback: 'failure', error: 'USAGE' });
  });

  it('re-runs itself under the project Node 22 when started by a Node that cannot strip types', async () => {
    // Whatever Node this machine has, the launcher is made to see an old one (until it re-runs itself).
    const olderNode = `if (!process.env.STEPBACK_RELAUNCHED) Object.defineProperty(process.versions, 'node', { value: '20.0.0' });`;
    const run = await runStepback(
      ['backups', 'list', '--storage', 'file:///tmp/none', '--dir', 'a/0', '--json'],
      { nodeArgs: ['--import', `data:text/javascript,${encodeURIComponent(olderNode)}`] },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('[]\n');
    const stuck = await runStepback(['--help'], {
      nodeArgs: [
        '--import',
        `data:text/javascript,${encodeURIComponent("Object.defineProperty(process.versions, 'node', { value: '20.0.0' });")}`,
      ],
    });
    expect(stuck.code).toBe(1);
    expect(stuck.stderr).toMatch(/cannot run TypeScript either/);
  });
});
