import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { openStorage } from '../../core/storage/index.ts';
import { projectRoot } from '../support/cli.ts';
import { physicalManifest } from '../support/manifests.ts';
import { tempDir } from '../support/root.ts';

const run = promisify(execFile);

/** The agent as it goes onto a DB host: two files, a symlink on PATH, no node_modules anywhere near. */
let host: string;
let stepback: string;

beforeAll(async () => {
  host = await tempDir('db-host');
  const bundle = path.join(host, 'lib', 'stepback.mjs');
  await run(process.execPath, [path.join(projectRoot, 'scripts', 'bundle-agent.js'), bundle], {
    cwd: projectRoot,
  });
  stepback = path.join(host, 'bin', 'stepback');
  await fs.mkdir(path.dirname(stepback));
  await fs.symlink(bundle, stepback);
}, 120_000);

/** Runs the installed agent by its path, as the SSM document does (its shebang picks `node` on PATH). */
function agent(args: string[], env: NodeJS.ProcessEnv = {}) {
  return run(stepback, args, {
    cwd: host,
    env: { ...process.env, PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`, ...env },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
}

describe('the agent bundle', () => {
  it('is an executable module and the agent beside it, which run without the project', async () => {
    const help = await agent(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['backup', 'restore', 'snapshot', 'multirestore', 'diff', 'run']) {
      expect(help.stdout).toContain(`  ${command} `);
    }
    const installed = await fs.readdir(path.dirname(await fs.realpath(stepback)));
    expect(installed).toEqual(expect.arrayContaining(['stepback.mjs', 'stepback-agent.mjs']));
    expect(installed).not.toContain('node_modules');
  });

  it('keeps the compiled agent in the compile cache it is given, for the next start', async () => {
    const cache = await tempDir('compile-cache');
    expect((await agent(['--help'], { NODE_COMPILE_CACHE: cache })).code).toBe(0);
    const written = await fs.readdir(cache, { recursive: true });
    expect(written.length).toBeGreaterThan(0);
  });

  it('reads backups from storage and keeps the exit codes', async () => {
    const dir = await tempDir('bundle-storage');
    const storage = await openStorage(`file://${dir}`);
    const backup = await storage.startBackup('ks/0', '2026-11-24.100000.db1');
    await backup.writeFile('0000', () => Readable.from([Buffer.from('x')]));
    await backup.endBackup(physicalManifest({ name: backup.name, dir: 'ks/0' }));
    await storage.close();

    const listed = await agent(['backups', 'list', '--storage', `file://${dir}`, '--dir', 'ks/0', '--json']);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({ name: '2026-11-24.100000.db1', complete: true }),
    ]);
    const missing = await agent([
      'backups',
      'validate',
      '--storage',
      `file://${dir}`,
      '--dir',
      'ks/0',
      '--backup',
      'nope',
    ]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('error: backup ks/0/nope does not exist');
    const usage = await agent(['backup', '--dir', 'ks/0']);
    expect(usage.code).toBe(2);
  });
});
