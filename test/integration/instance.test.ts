import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireInstance, recoverInterrupted } from '../../agent/instance/lease.ts';
import { markerPath } from '../../agent/instance/marker.ts';
import { captureState, checkStillQuiesced, quiesce, restoreState } from '../../agent/instance/state.ts';
import { type CommandRunner, MysqlDaemon } from '../../agent/mysqld/daemon.ts';
import { InstanceBusyError, type StepbackError, VerificationError } from '../../core/errors.ts';
import { recordingLogger, silentLogger } from '../../core/log.ts';
import { createTestInstance, startReplication, type TestInstance } from '../support/mariadb.ts';

let primary: TestInstance;
let replica: TestInstance;

beforeAll(async () => {
  [primary, replica] = await Promise.all([
    createTestInstance({ name: 'instance-primary' }),
    createTestInstance({ name: 'instance-replica' }),
  ]);
  await startReplication(replica, primary);
});

afterAll(async () => {
  await Promise.all([primary?.dispose(), replica?.dispose()]);
});

/** A pid that belonged to a process which has exited. */
function deadPid(): number {
  const child = spawnSync('sh', ['-c', 'echo $$']);
  return Number(child.stdout.toString().trim());
}

describe('MysqlDaemon', () => {
  it('learns datadir, socket, port, logs and secure_file_priv from the defaults file, as the server resolves them', async () => {
    const daemon = await MysqlDaemon.open({ defaultsFile: primary.cnf, logger: silentLogger });
    expect(daemon.config).toMatchObject({
      datadir: primary.datadir,
      socket: primary.socket,
      port: primary.port,
      pidFile: primary.pidFile,
      logBin: path.join(primary.datadir, 'mysql-bin'),
      relayLog: path.join(primary.datadir, 'relay-bin'),
      innodbDataHomeDir: primary.datadir,
      innodbLogGroupHomeDir: primary.datadir,
      innodbDataFiles: ['ibdata1'],
      secureFilePriv: primary.filesDir,
      serverId: primary.serverId,
      client: { user: 'root' },
    });
    expect(daemon.flavor.name).toBe('mariadb');
  });

  it('shuts down cleanly, waiting for the process, and starts again with extra arguments', async () => {
    const daemon = await MysqlDaemon.open({ defaultsFile: primary.cnf, logger: silentLogger });
    await primary.query('CREATE DATABASE IF NOT EXISTS daemon_test');
    await daemon.shutdown();
    expect(await daemon.isRunning()).toBe(false);
    await daemon.start(['--skip-networking']);
    expect(await primary.query('SELECT @@skip_networking AS v')).toEqual([{ v: '1' }]);
    await daemon.upgrade();
    await daemon.shutdown();
    await daemon.start();
    expect(await daemon.serverVersion()).toMatch(/MariaDB/);
    expect(await primary.query("SHOW DATABASES LIKE 'daemon_test'")).toHaveLength(1);
  });

  it('says why mysqld did not start, from its error log', async () => {
    const broken = await createTestInstance({ name: 'instance-broken', start: false });
    try {
      const daemon = await MysqlDaemon.open({ defaultsFile: broken.cnf, logger: silentLogger });
      const error = await daemon.start(['--no-such-server-option=1']).catch((e: unknown) => e);
      expect((error as Error).message).toMatch(/did not start/);
      expect((error as StepbackError).hint).toContain('no-such-server-option');
    } finally {
      await broken.dispose();
    }
  });

  it('drives a systemd unit through systemctl, passing extra arguments as MYSQLD_OPTS', async () => {
    const calls: string[] = [];
    const run: CommandRunner = async (file, args) => {
      calls.push([file, ...args].join(' '));
      return args[0] === 'is-active' ? 'active\n' : '';
    };
    const opened = await MysqlDaemon.open({ defaultsFile: primary.cnf, logger: silentLogger });
    const daemon = new MysqlDaemon(opened.config, opened.binaries, {
      defaultsFile: primary.cnf,
      logger: silentLogger,
      control: { kind: 'systemd', service: 'mariadb', run },
    });
    await daemon.start(['--skip-grant-tables', '--skip-networking']);
    expect(await daemon.isRunning()).toBe(true);
    await daemon.start();
    expect(calls).toEqual([
      'systemctl set-environment MYSQLD_OPTS=--skip-grant-tables --skip-networking',
      'systemctl start mariadb',
      'systemctl unset-environment MYSQLD_OPTS',
      'systemctl is-active mariadb',
      // A normal start never inherits options a killed agent left behind.
      'systemctl unset-environment MYSQLD_OPTS',
      'systemctl start mariadb',
    ]);
  });
});

describe('instance state', () => {
  it('quiesces a replica by stopping replication and puts it back running', async () => {
    const daemon = await MysqlDaemon.open({ defaultsFile: replica.cnf, logger: silentLogger });
    const state = await captureState(daemon);
    expect(state).toEqual({
      running: true,
      readOnly: false,
      replication: { configured: true, running: true },
    });
    const quiesced = await quiesce(daemon, state, silentLogger);
    expect(quiesced.role).toBe('replica');
    expect(quiesced.position).toMatch(/^0-\d+-\d+$/);
    expect((await captureState(daemon)).replication.running).toBe(false);
    expect(await restoreState(daemon, state, silentLogger)).toEqual(['started replication']);
    expect((await captureState(daemon)).replication.running).toBe(true);
  });

  it('quiesces a primary by making it read-only and puts read_only back', async () => {
    const daemon = await MysqlDaemon.open({ defaultsFile: primary.cnf, logger: silentLogger });
    const state = await captureState(daemon);
    expect(state.replication.configured).toBe(false);
    expect((await quiesce(daemon, state, silentLogger)).role).toBe('primary');
    expect((await captureState(daemon)).readOnly).toBe(true);
    await restoreState(daemon, state, silentLogger);
    expect((await captureState(daemon)).readOnly).toBe(false);
  });
});

describe('instance lease', () => {
  it('refuses a second operation with InstanceBusyError naming the first', async () => {
    const daemon = await MysqlDaemon.open({ defaultsFile: primary.cnf, logger: silentLogger });
    const lease = await acquireInstance(daemon, 'backup', silentLogger);
    try {
      const marker = JSON.parse(await fs.readFile(markerPath(daemon), 'utf8'));
      await fs.writeFile(markerPath(daemon), JSON.stringify({ ...marker, pid: process.ppid }));
      const error = await acquireInstance(daemon, 'snapshot', silentLogger).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InstanceBusyError);
      expect((error as Error).message).toContain(`stepback backup (pid ${process.ppid}`);
    } finally {
      await lease.release();
    }
    expect(await fs.stat(markerPath(daemon)).catch(() => undefined)).toBeUndefined();
  });

  it('puts back an instance left read-only and not replicating by a killed operation, and says so', async () => {
    const daemon = await MysqlDaemon.open({ defaultsFile: replica.cnf, logger: silentLogger });
    const original = await captureState(daemon);
    await quiesce(daemon, original, silentLogger);
    await daemon.withConnection((c) => c.query('SET GLOBAL read_only = 1'));
    await fs.writeFile(
      markerPath(daemon),
      JSON.stringify({
        version: 1,
        operation: 'backup',
        pid: deadPid(),
        host: 'h',
        startedAt: 'earlier',
        original,
      }),
    );

    const logger = recordingLogger();
    expect(await recoverInterrupted(daemon, logger)).toEqual(['set read_only=OFF', 'started replication']);
    expect(await captureState(daemon)).toEqual(original);
    expect(logger.records.map((r) => r.message)).toContainEqual(
      expect.stringContaining('earlier stepback backup'),
    );
    expect(await recoverInterrupted(daemon, silentLogger)).toEqual([]);
  });

  it('starts an instance a killed operation left shut down', async () => {
    const daemon = await MysqlDaemon.open({ defaultsFile: replica.cnf, logger: silentLogger });
    const original = await captureState(daemon);
    await daemon.shutdown();
    await fs.writeFile(
      markerPath(daemon),
      JSON.stringify({
        version: 1,
        operation: 'backup',
        pid: deadPid(),
        host: 'h',
        startedAt: 'earlier',
        original,
      }),
    );
    expect((await recoverInterrupted(daemon, silentLogger))[0]).toBe('started mysqld');
    expect(await captureState(daemon)).toEqual(original);
  });

  it('removes a marker that recorded no state (nothing was changed yet)', async () => {
    const daemon = await MysqlDaemon.open({ defaultsFile: primary.cnf, logger: silentLogger });
    await fs.writeFile(
      markerPath(daemon),
      JSON.stringify({ version: 1, operation: 'backup', pid: deadPid(), host: 'h', startedAt: 'earlier' }),
    );
    expect(await recoverInterrupted(daemon, silentLogger)).toEqual([]);
    const lease = await acquireInstance(daemon, 'backup', silentLogger);
    await lease.release();
  });
});

describe('stopping writes for a consistent position', () => {
  it('catches a write that read_only let through (a SUPER user on MariaDB) before data is read', async () => {
    const daemon = await MysqlDaemon.open({ defaultsFile: primary.cnf, logger: silentLogger });
    const original = await captureState(daemon);
    const quiesced = await quiesce(daemon, original, silentLogger);
    try {
      await expect(checkStillQuiesced(daemon, quiesced)).resolves.toBeUndefined();
      // root has SUPER: read_only does not stop it on MariaDB.
      await primary.query('CREATE DATABASE IF NOT EXISTS quiesce_check');
      await primary.query('CREATE TABLE IF NOT EXISTS quiesce_check.t (id INT PRIMARY KEY)');
      const error = await checkStillQuiesced(daemon, quiesced).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(VerificationError);
      expect((error as Error).message).toMatch(/the position moved after writes were stopped/);
    } finally {
      await restoreState(daemon, original, silentLogger);
    }
  });
});
