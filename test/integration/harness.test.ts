import { afterAll, describe, expect, it } from 'vitest';
import {
  createTestInstance,
  startReplication,
  type TestInstance,
  waitForReplica,
} from '../support/mariadb.ts';

const instances: TestInstance[] = [];

afterAll(async () => {
  for (const instance of instances) await instance.dispose();
});

describe('test mariadbd instances', () => {
  it('run privately with their own port, socket, binlog and secure_file_priv, and replicate with GTIDs', async () => {
    const primary = await createTestInstance({ name: 'harness-primary' });
    const replica = await createTestInstance({ name: 'harness-replica' });
    instances.push(primary, replica);

    const [vars] = await primary.query<[Record<string, string | number>]>(
      'SELECT @@port AS port, @@socket AS socket, @@datadir AS datadir, @@log_bin AS logBin, @@secure_file_priv AS files, @@character_set_server AS charset',
    );
    expect(Number(vars.port)).toBe(primary.port);
    expect(Number(vars.port)).not.toBe(3306);
    expect(vars.socket).toBe(primary.socket);
    expect(vars.datadir).toBe(`${primary.datadir}/`);
    expect(Number(vars.logBin)).toBe(1);
    expect(vars.files).toBe(`${primary.filesDir}/`);
    expect(vars.charset).toBe('utf8mb4');

    await startReplication(replica, primary);
    await primary.query('CREATE DATABASE shop');
    await primary.query('CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(10))');
    await primary.query("INSERT INTO shop.t VALUES (1, 'a'), (2, 'b')");
    await waitForReplica(replica, primary);
    expect(await replica.query('SELECT * FROM shop.t ORDER BY id')).toEqual([
      { id: 1, v: 'a' },
      { id: 2, v: 'b' },
    ]);
  });

  it('stop waits for the process to exit, start brings it back with its data, kill leaves no process', async () => {
    const instance = await createTestInstance({ name: 'harness-restart' });
    instances.push(instance);
    await instance.query('CREATE DATABASE keep');
    await instance.stop();
    expect(await instance.isRunning()).toBe(false);
    await instance.start();
    expect(await instance.query("SHOW DATABASES LIKE 'keep'")).toHaveLength(1);
    await instance.kill();
    expect(await instance.isRunning()).toBe(false);
  });
});
