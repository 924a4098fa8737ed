import { describe, expect, it } from 'vitest';
import type { Connection } from '../../agent/mysql/connection.ts';
import { mariadbFlavor, mysqlFlavor } from '../../agent/mysql/flavor.ts';

/** A connection that records each statement and answers with the rows a real server gave. */
function recordingConnection(answers: Record<string, Record<string, unknown>[]> = {}) {
  const statements: string[] = [];
  const connection = {
    async query(sql: string) {
      statements.push(sql);
      const key = Object.keys(answers).find((prefix) => sql.startsWith(prefix));
      return [key ? answers[key] : [], []];
    },
  } as unknown as Connection;
  return { connection, statements };
}

/** SHOW REPLICA STATUS of a MySQL 9.7.4 replica (the columns the flavor reads, as the server names them). */
const replicaStatusRow = {
  Replica_IO_State: 'Waiting for source to send event',
  Source_Host: '127.0.0.1',
  Source_User: 'repl',
  Source_Port: 40123,
  Replica_IO_Running: 'Yes',
  Replica_SQL_Running: 'Yes',
  Last_IO_Error: '',
  Last_SQL_Error: '',
  Auto_Position: 1,
};

describe('MySQL replication statements (8.4 and 9.x have no SLAVE/MASTER forms)', () => {
  it('uses SHOW REPLICA STATUS, STOP/START REPLICA, CHANGE REPLICATION SOURCE TO, RESET REPLICA ALL, SHOW REPLICAS', async () => {
    const { connection, statements } = recordingConnection({ 'SHOW REPLICA STATUS': [replicaStatusRow] });
    expect(await mysqlFlavor.replicationStatus(connection)).toEqual({
      configured: true,
      ioRunning: true,
      sqlRunning: true,
      primaryHost: '127.0.0.1',
      primaryPort: 40123,
      lastError: undefined,
    });
    await mysqlFlavor.stopReplication(connection);
    await mysqlFlavor.startReplication(connection);
    await mysqlFlavor.configureReplication(connection, {
      host: '10.0.0.1',
      port: 3306,
      user: 'repl',
      password: 'secret',
    });
    await mysqlFlavor.resetReplication(connection);
    await mysqlFlavor.attachedReplicas(connection);
    await mysqlFlavor.stopWrites(connection);
    expect(statements).toEqual([
      'SHOW REPLICA STATUS',
      'STOP REPLICA',
      'START REPLICA',
      'CHANGE REPLICATION SOURCE TO SOURCE_HOST = ?, SOURCE_PORT = ?, SOURCE_USER = ?, SOURCE_PASSWORD = ?, SOURCE_AUTO_POSITION = 1',
      'RESET REPLICA ALL',
      'SHOW REPLICAS',
      'SET GLOBAL super_read_only = 1',
    ]);
    expect(statements.filter((sql) => /\b(SLAVE|MASTER)\b/.test(sql))).toEqual([]);
  });

  it('reads an idle replica (no source) as not configured', async () => {
    const { connection } = recordingConnection();
    expect(await mysqlFlavor.replicationStatus(connection)).toMatchObject({
      configured: false,
      ioRunning: false,
      sqlRunning: false,
    });
  });

  it.each([
    ['9.7.4-2', 'RESET BINARY LOGS AND GTIDS'],
    ['8.4.3', 'RESET BINARY LOGS AND GTIDS'],
    ['8.0.40', 'RESET MASTER'],
  ])('sets a restored position on %s with %s, then gtid_purged', async (version, reset) => {
    const { connection, statements } = recordingConnection({ 'SELECT VERSION()': [{ v: version }] });
    await mysqlFlavor.setRestoredPosition(connection, '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5');
    expect(statements).toEqual(['SELECT VERSION()', reset, 'SET GLOBAL gtid_purged = ?']);
  });

  it.each([
    ['9.7.4', '--skip-replica-start'],
    ['8.4.0', '--skip-replica-start'],
    ['8.0.26', '--skip-replica-start'],
    ['8.0.25', '--skip-slave-start'],
  ])('keeps replication from starting with mysqld on %s by %s', (version, option) => {
    expect(mysqlFlavor.skipReplicationStartOption(version)).toBe(option);
  });

  it('MariaDB keeps its own statements (SLAVE, MASTER_USE_GTID)', async () => {
    const { connection, statements } = recordingConnection();
    await mariadbFlavor.replicationStatus(connection);
    await mariadbFlavor.stopReplication(connection);
    await mariadbFlavor.startReplication(connection);
    expect(statements).toEqual(['SHOW SLAVE STATUS', 'STOP SLAVE', 'START SLAVE']);
  });
});
