import fs from 'node:fs/promises';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrintDefaults } from '../../agent/mysqld/config.ts';
import { projectRoot, runStepback } from '../support/cli.ts';
import { type FakeSystemctl, fakeSystemctl } from '../support/fake-systemctl.ts';
import { createTestInstance, type TestInstance } from '../support/mariadb.ts';
import { markedBlock, shellCommands } from '../support/markdown.ts';
import { tempDir } from '../support/root.ts';

/**
 * docs/first-backup.md, run as written: the user is created with the page's SQL, the agent logs in
 * through the page's defaults file, and the page's three commands back up and restore a running
 * server run by a systemd unit. Only the paths are replaced by the test's own.
 */

const page = await fs.readFile(path.join(projectRoot, 'docs', 'first-backup.md'), 'utf8');
const grants = markedBlock(page, 'mariadb-grants').body;
const defaultsFile = markedBlock(page, 'defaults-file').body;
const commands = shellCommands(markedBlock(page, 'first-backup').body);

/** The paths the page names, each with the one this test uses. */
const documented = {
  serverCnf: '/etc/mysql/my.cnf',
  stepbackCnf: '/etc/stepback/my.cnf',
  storage: 'file:///var/backups/stepback',
};

let instance: TestInstance;
let systemctl: FakeSystemctl;
let stepbackCnf: string;
let storageRoot: string;
/** The agent's user and password, as the page's defaults file gives them. */
let client: { user: string; password: string };

/** The page's command with the test's paths: the argv after `npx stepback`. */
function localized(text: string): string[] {
  const argv = shellCommands(
    text
      .replaceAll(documented.stepbackCnf, stepbackCnf)
      .replaceAll(documented.storage, `file://${storageRoot}`),
  )[0]!.argv;
  expect(argv.slice(0, 2)).toEqual(['npx', 'stepback']);
  return argv.slice(2);
}

async function asAgentUser<T>(work: (connection: mysql.Connection) => Promise<T>): Promise<T> {
  const connection = await mysql.createConnection({ socketPath: instance.socket, ...client });
  try {
    return await work(connection);
  } finally {
    await connection.end();
  }
}

async function orders(): Promise<unknown[]> {
  return asAgentUser(
    async (c) => (await c.query('SELECT id, note FROM shop.orders ORDER BY id'))[0] as unknown[],
  );
}

beforeAll(async () => {
  instance = await createTestInstance({ name: 'first-backup' });
  systemctl = await fakeSystemctl('mariadb', instance);
  const dir = await tempDir('first-backup');
  storageRoot = path.join(dir, 'backups');
  stepbackCnf = path.join(dir, 'stepback.cnf');

  await instance.query('CREATE DATABASE shop');
  await instance.query('CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(100))');
  await instance.query("INSERT INTO shop.orders VALUES (1, 'first'), (2, 'second')");
  const connection = await instance.connect();
  try {
    for (const statement of grants.split(/;\s*$/m).filter((s) => s.trim())) await connection.query(statement);
    // Root gets a password only this test knows: the agent can log in only as the page's user.
    await connection.query("ALTER USER 'root'@'localhost' IDENTIFIED BY 'root-not-for-the-agent'");
  } finally {
    await connection.end();
  }
  await fs.writeFile(stepbackCnf, defaultsFile.replaceAll(documented.serverCnf, instance.cnf), {
    mode: 0o600,
  });
  const [, section] = /^\[client\]\n([\s\S]*)$/m.exec(defaultsFile) ?? [];
  const clientOptions = parsePrintDefaults(
    (section ?? '')
      .split('\n')
      .map((line) => `--${line}`)
      .join('\n'),
  );
  client = { user: clientOptions.get('user') ?? '', password: clientOptions.get('password') ?? '' };
});

afterAll(async () => {
  await instance?.dispose();
});

describe('A first backup of your own server', () => {
  it('names the three commands, each on the same storage and directory', () => {
    expect(commands.map((c) => c.argv.slice(0, 4).join(' '))).toEqual([
      'npx stepback backup --defaults-file',
      'npx stepback backups list',
      'npx stepback restore --defaults-file',
    ]);
    for (const command of commands) expect(command.text).toContain(documented.storage);
    expect(defaultsFile).toContain(`!include ${documented.serverCnf}`);
    expect(client.user).toBe('stepback');
  });

  it('backs up and restores a running server as the documented user, through its systemd unit', async () => {
    const env = systemctl.env();
    const [backupCommand, listCommand, restoreCommand] = commands;

    const backup = await runStepback(localized(backupCommand!.text), { env });
    expect(backup.stderr).not.toContain('error');
    expect(backup.code).toBe(0);
    expect(await systemctl.calls()).toEqual(expect.arrayContaining(['stop mariadb', 'start mariadb']));
    expect(await instance.isRunning()).toBe(true);

    // What happens after the backup is what the restore takes back.
    await asAgentUser(async (c) => {
      await c.query("INSERT INTO shop.orders VALUES (3, 'after the backup')");
      await c.query("UPDATE shop.orders SET note = 'changed' WHERE id = 1");
    });

    const list = await runStepback(localized(listCommand!.text), { env });
    expect(list.code).toBe(0);
    expect(list.stdout).toContain('1 backup(s) in mydb/0: 1 complete, 0 incomplete');

    const callsBeforeRestore = (await systemctl.calls()).length;
    const restore = await runStepback(localized(restoreCommand!.text), { env });
    expect(restore.stderr).not.toContain('error');
    expect(restore.code).toBe(0);
    const restoreCalls = (await systemctl.calls()).slice(callsBeforeRestore);
    // One start, as the documented user, with replication not started (the backup's release is this one's).
    expect(restoreCalls).toEqual(
      expect.arrayContaining([
        'stop mariadb',
        'set-environment MYSQLD_OPTS=--skip-slave-start',
        'start mariadb',
      ]),
    );
    expect(restoreCalls.filter((call) => call.startsWith('start '))).toHaveLength(1);
    expect(restoreCalls.join('\n')).not.toContain('--skip-grant-tables');
    expect(await orders()).toEqual([
      { id: 1, note: 'first' },
      { id: 2, note: 'second' },
    ]);
  });

  it('snapshots the running server as the documented user, writes held only while its sessions open', async () => {
    const snapshot = await runStepback([
      'snapshot',
      '--defaults-file',
      stepbackCnf,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      'mydb/0',
      '--database',
      'shop',
      '--json',
    ]);
    expect(snapshot.code, snapshot.stderr).toBe(0);
    expect(snapshot.json).toMatchObject({
      role: 'primary',
      consistency: { method: 'consistent-read', held: 'writes' },
    });
  });

  it('archives the binary logs and restores to a GTID as the documented user (the grants cover both)', async () => {
    const env = systemctl.env();
    const storage = `file://${storageRoot}`;
    await asAgentUser((c) => c.query("INSERT INTO shop.orders VALUES (4, 'kept')"));
    const [{ pos }] = (await asAgentUser(
      async (c) => (await c.query('SELECT @@GLOBAL.gtid_binlog_pos AS pos'))[0],
    )) as [{ pos: string }];
    await asAgentUser((c) => c.query('DELETE FROM shop.orders WHERE id = 4'));
    const common = ['--storage', storage, '--dir', 'mydb/0', '--defaults-file', stepbackCnf];
    const archive = await runStepback(['binlogs', 'archive', ...common, '--max-age', '0'], { env });
    expect(archive.code, archive.stderr).toBe(0);
    const restore = await runStepback(['restore', ...common, '--to-gtid', pos, '--delete-before-restore'], {
      env,
    });
    expect(restore.code, restore.stderr).toBe(0);
    expect(await orders()).toContainEqual({ id: 4, note: 'kept' });
  });
});
