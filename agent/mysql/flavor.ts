import { StepbackError } from '../../core/errors.ts';
import { type FlavorName, isValidGtidSet } from '../../core/gtid.ts';
import { type Connection, queryRows, queryValue } from './connection.ts';

/** Replication as SHOW SLAVE/REPLICA STATUS reports it, in flavor-neutral words. */
export interface ReplicationStatus {
  /** The instance has a configured primary (it is a replica). */
  configured: boolean;
  ioRunning: boolean;
  sqlRunning: boolean;
  primaryHost: string | undefined;
  primaryPort: number | undefined;
  lastError: string | undefined;
}

export interface ReplicationSource {
  host: string;
  port: number;
  user: string;
  password: string;
}

/**
 * What differs between MariaDB and MySQL: GTID variables, replication statements and upgrades.
 * Positions are checked for syntax before they reach any statement.
 */
export interface Flavor {
  readonly name: FlavorName;
  replicationStatus(connection: Connection): Promise<ReplicationStatus>;
  stopReplication(connection: Connection): Promise<void>;
  startReplication(connection: Connection): Promise<void>;
  /** Every transaction this instance has applied (its own and replicated). */
  executedPosition(connection: Connection): Promise<string>;
  /** GTIDs no longer in its binary logs ('' where the flavor has no such notion). */
  purgedPosition(connection: Connection): Promise<string>;
  /** After a restore: make `position` the instance's starting point for replication. */
  setRestoredPosition(connection: Connection, position: string): Promise<void>;
  /** Point replication at `source`, auto-positioned by GTID (replication stays stopped). */
  configureReplication(connection: Connection, source: ReplicationSource): Promise<void>;
  /** Waits until `position` is applied; false on timeout. */
  waitForPosition(connection: Connection, position: string, timeoutSeconds: number): Promise<boolean>;
  /**
   * Whether a datadir written by `backupServerVersion` needs the upgrade binary run on
   * `serverVersion`: not when both are the same release (its system tables are already this
   * release's), never on MySQL 8.0.16+ (which upgrades itself on start).
   */
  needsUpgradeTool(serverVersion: string, backupServerVersion: string): boolean;
  /** What this server's binary logs hold: the position its replicas can catch up to. */
  binlogPosition(connection: Connection): Promise<string>;
  /** Forgets any replication configuration (a restored datadir may carry its source's). */
  resetReplication(connection: Connection): Promise<void>;
  /** The server option that keeps replication from starting with mysqld. */
  skipReplicationStartOption(serverVersion: string): string;
  /** How many replicas are connected to this server now. */
  attachedReplicas(connection: Connection): Promise<number>;
  /**
   * Stops writes on a primary: read_only, and on MySQL super_read_only, which also stops users with
   * SUPER (on MariaDB they may still write: the position is checked again before the copy).
   */
  stopWrites(connection: Connection): Promise<void>;
}

function versionParts(serverVersion: string): [number, number, number] {
  const [major = 0, minor = 0, patch = 0] = serverVersion.split(/[.-]/).map(Number);
  return [major, minor, patch];
}

/** `10.11.19-MariaDB-log` and `10.11.19` are the same release; `10.11.18` is not. */
export function sameRelease(a: string, b: string): boolean {
  return versionParts(a).join('.') === versionParts(b).join('.');
}

function checkedPosition(flavor: FlavorName, position: string): string {
  if (!isValidGtidSet(flavor, position))
    throw new StepbackError(`${JSON.stringify(position)} is not a ${flavor} GTID set`);
  return position;
}

function statusFrom(
  row: Record<string, unknown> | undefined,
  io: string,
  sql: string,
  host: string,
  port: string,
) {
  if (!row) {
    return {
      configured: false,
      ioRunning: false,
      sqlRunning: false,
      primaryHost: undefined,
      primaryPort: undefined,
      lastError: undefined,
    };
  }
  const text = (key: string) => (row[key] === null || row[key] === undefined ? undefined : String(row[key]));
  const lastError = [text('Last_IO_Error'), text('Last_SQL_Error')].filter(Boolean).join('; ') || undefined;
  return {
    configured: Boolean(text(host)),
    // "Connecting" and "Preparing" are a running IO thread that has not reached its primary yet.
    ioRunning: text(io) !== undefined && text(io) !== 'No',
    sqlRunning: text(sql) === 'Yes',
    primaryHost: text(host) || undefined,
    primaryPort: text(port) ? Number(text(port)) : undefined,
    lastError,
  };
}

export const mariadbFlavor: Flavor = {
  name: 'mariadb',
  async replicationStatus(connection) {
    const [row] = await queryRows(connection, 'SHOW SLAVE STATUS');
    return statusFrom(row, 'Slave_IO_Running', 'Slave_SQL_Running', 'Master_Host', 'Master_Port');
  },
  async stopReplication(connection) {
    await connection.query('STOP SLAVE');
  },
  async startReplication(connection) {
    await connection.query('START SLAVE');
  },
  async executedPosition(connection) {
    return String((await queryValue(connection, 'SELECT @@GLOBAL.gtid_current_pos')) ?? '');
  },
  async purgedPosition() {
    // MariaDB keeps no purged set; its binlogs' Gtid_list events play that part.
    return '';
  },
  async setRestoredPosition(connection, position) {
    await connection.query('SET GLOBAL gtid_slave_pos = ?', [checkedPosition('mariadb', position)]);
  },
  async configureReplication(connection, source) {
    await connection.query(
      'CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_USE_GTID = slave_pos',
      [source.host, source.port, source.user, source.password],
    );
  },
  async waitForPosition(connection, position, timeoutSeconds) {
    const result = await queryValue(connection, 'SELECT MASTER_GTID_WAIT(?, ?)', [
      checkedPosition('mariadb', position),
      timeoutSeconds,
    ]);
    return Number(result) === 0;
  },
  needsUpgradeTool(serverVersion, backupServerVersion) {
    return !sameRelease(serverVersion, backupServerVersion);
  },
  async binlogPosition(connection) {
    return String((await queryValue(connection, 'SELECT @@GLOBAL.gtid_binlog_pos')) ?? '');
  },
  async resetReplication(connection) {
    await connection.query('RESET SLAVE ALL');
  },
  skipReplicationStartOption() {
    return '--skip-slave-start';
  },
  async attachedReplicas(connection) {
    return (await queryRows(connection, 'SHOW SLAVE HOSTS')).length;
  },
  async stopWrites(connection) {
    await connection.query('SET GLOBAL read_only = 1');
  },
};

/**
 * The statement that empties a MySQL server's binary logs and GTID state: RESET MASTER until it was
 * replaced by RESET BINARY LOGS AND GTIDS in 8.2 (RESET MASTER is gone from 8.4 on).
 */
export function resetBinaryLogsStatement(serverVersion: string): string {
  const [major, minor] = versionParts(serverVersion);
  return major > 8 || (major === 8 && minor >= 2) ? 'RESET BINARY LOGS AND GTIDS' : 'RESET MASTER';
}

/**
 * MySQL 8.0.26+ (the REPLICA/SOURCE statements), run against a real MySQL 9.7 server by the tests:
 * SHOW REPLICA STATUS, gtid_executed.
 */
export const mysqlFlavor: Flavor = {
  name: 'mysql',
  async replicationStatus(connection) {
    const [row] = await queryRows(connection, 'SHOW REPLICA STATUS');
    return statusFrom(row, 'Replica_IO_Running', 'Replica_SQL_Running', 'Source_Host', 'Source_Port');
  },
  async stopReplication(connection) {
    await connection.query('STOP REPLICA');
  },
  async startReplication(connection) {
    await connection.query('START REPLICA');
  },
  async executedPosition(connection) {
    return String((await queryValue(connection, 'SELECT @@GLOBAL.gtid_executed')) ?? '').replace(/\n/g, '');
  },
  async purgedPosition(connection) {
    return String((await queryValue(connection, 'SELECT @@GLOBAL.gtid_purged')) ?? '').replace(/\n/g, '');
  },
  async setRestoredPosition(connection, position) {
    const checked = checkedPosition('mysql', position);
    const version = String(await queryValue(connection, 'SELECT VERSION()'));
    const reset = resetBinaryLogsStatement(version);
    // gtid_purged can only be set on an empty gtid_executed: the restored binlogs are not ours.
    try {
      await connection.query(reset);
      await connection.query('SET GLOBAL gtid_purged = ?', [checked]);
    } catch (error) {
      throw new StepbackError(
        `MySQL ${version} refused to take ${JSON.stringify(checked)} as the restored position (${reset}, then SET GLOBAL gtid_purged): ${(error as Error).message}`,
        { cause: error },
      );
    }
  },
  async configureReplication(connection, source) {
    await connection.query(
      'CHANGE REPLICATION SOURCE TO SOURCE_HOST = ?, SOURCE_PORT = ?, SOURCE_USER = ?, SOURCE_PASSWORD = ?, SOURCE_AUTO_POSITION = 1',
      [source.host, source.port, source.user, source.password],
    );
  },
  async waitForPosition(connection, position, timeoutSeconds) {
    const result = await queryValue(connection, 'SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)', [
      checkedPosition('mysql', position),
      timeoutSeconds,
    ]);
    return Number(result) === 0;
  },
  needsUpgradeTool(serverVersion, backupServerVersion) {
    const [major, minor, patch] = versionParts(serverVersion);
    const selfUpgrading = major > 8 || (major === 8 && (minor > 0 || patch >= 16));
    return !selfUpgrading && !sameRelease(serverVersion, backupServerVersion);
  },
  async binlogPosition(connection) {
    return String((await queryValue(connection, 'SELECT @@GLOBAL.gtid_executed')) ?? '').replace(/\n/g, '');
  },
  async resetReplication(connection) {
    await connection.query('RESET REPLICA ALL');
  },
  skipReplicationStartOption(serverVersion) {
    // --skip-replica-start arrived in 8.0.26; the older name still works there.
    const [major, minor, patch] = versionParts(serverVersion);
    return major > 8 || (major === 8 && (minor > 0 || patch >= 26))
      ? '--skip-replica-start'
      : '--skip-slave-start';
  },
  async attachedReplicas(connection) {
    return (await queryRows(connection, 'SHOW REPLICAS')).length;
  },
  async stopWrites(connection) {
    await connection.query('SET GLOBAL super_read_only = 1');
  },
};

export function flavorNamed(name: FlavorName): Flavor {
  return name === 'mariadb' ? mariadbFlavor : mysqlFlavor;
}
