import { captureState, type InstanceState } from '../../agent/instance/state.ts';
import { MysqlDaemon } from '../../agent/mysqld/daemon.ts';
import { silentLogger } from '../../core/log.ts';
import type { TestInstance } from './mariadb.ts';

/** Running, read_only and replication as the agent sees them. */
export async function stateOf(instance: TestInstance): Promise<InstanceState> {
  return captureState(await MysqlDaemon.open({ defaultsFile: instance.cnf, logger: silentLogger }));
}

/** CHECKSUM TABLE of every base table of `database`, by table name (empty when it does not exist). */
export async function tableChecksums(
  instance: TestInstance,
  database: string,
): Promise<Record<string, string>> {
  const tables = await instance.query<{ name: string }[]>(
    "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY table_name",
    [database],
  );
  const checksums: Record<string, string> = {};
  for (const { name } of tables) {
    const [row] = await instance.query<{ Checksum: string | null }[]>(
      `CHECKSUM TABLE \`${database}\`.\`${name}\` EXTENDED`,
    );
    checksums[name] = String(row?.Checksum);
  }
  return checksums;
}

/** Adds `rows` rows of 1 KiB incompressible bytes to `database`.`table` (created when missing). */
export async function fillRandom(
  instance: TestInstance,
  database: string,
  table: string,
  rows: number,
): Promise<void> {
  await instance.query(`CREATE DATABASE IF NOT EXISTS \`${database}\``);
  await instance.query(
    `CREATE TABLE IF NOT EXISTS \`${database}\`.\`${table}\` (id INT PRIMARY KEY, payload VARBINARY(1024)) ENGINE=InnoDB`,
  );
  const [{ next }] = await instance.query<[{ next: string }]>(
    `SELECT COALESCE(MAX(id), 0) AS next FROM \`${database}\`.\`${table}\``,
  );
  await instance.query(
    `INSERT INTO \`${database}\`.\`${table}\` SELECT seq + ${Number(next)}, RANDOM_BYTES(1024) FROM \`${database}\`.seq_1_to_${rows}`,
  );
}
