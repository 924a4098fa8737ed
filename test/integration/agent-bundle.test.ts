import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage } from '../../core/storage/index.ts';
import { projectRoot } from '../support/cli.ts';
import { physicalManifest } from '../support/manifests.ts';
import { createTestInstance, type TestInstance } from '../support/mariadb.ts';
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

  describe('catch-up', () => {
    let instance: TestInstance;
    beforeAll(async () => {
      instance = await createTestInstance({ name: 'bundle-catchup' });
    });
    afterAll(async () => {
      await instance?.dispose();
    });

    it('applies the row events of the binary log (the reader names events by their class)', async () => {
      const storage = `file://${await tempDir('bundle-catchup-storage')}`;
      await instance.query('CREATE DATABASE shop');
      await instance.query('CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(20)) ENGINE=InnoDB');
      await instance.query("INSERT INTO shop.items VALUES (1, 'one'), (2, 'two')");
      const common = ['--defaults-file', instance.cnf, '--json'];
      const snapshot = await agent([
        'snapshot',
        ...common,
        '--storage',
        storage,
        '--dir',
        'shop/0',
        '--database',
        'shop',
      ]);
      expect(snapshot.code, snapshot.stderr).toBe(0);
      const load = await agent([
        'multirestore',
        ...common,
        '--storage',
        storage,
        '--sources',
        'shop/0',
        '--database',
        'copy',
        '--checkpoints',
      ]);
      expect(load.code, load.stderr).toBe(0);
      await instance.query("INSERT INTO shop.items VALUES (3, 'three')");
      await instance.query("UPDATE shop.items SET name = 'uno' WHERE id = 1");
      await instance.query('DELETE FROM shop.items WHERE id = 2');
      const [{ pos }] = await instance.query<[{ pos: string }]>('SELECT @@GLOBAL.gtid_binlog_pos AS pos');
      const caught = await agent([
        'catchup',
        ...common,
        '--database',
        'copy',
        '--source',
        `mysql://root@localhost/shop?socket=${encodeURIComponent(instance.socket)}`,
        '--until',
        pos,
        '--timeout-seconds',
        '60',
      ]);
      expect(caught.code, caught.stderr).toBe(0);
      expect(JSON.parse(caught.stdout)).toMatchObject({ stoppedAt: 'position', rowsApplied: 3 });
      expect(await instance.query('SELECT id, name FROM copy.items ORDER BY id')).toEqual([
        { id: 1, name: 'uno' },
        { id: 3, name: 'three' },
      ]);
    });
  });
});
