import { type Connection, qualifiedName, quoteIdentifier } from '../mysql/connection.ts';
import { STEPBACK_SCHEMA } from './databases.ts';

/** Local metadata: key/values that describe this host's copy (its role, its cell), not the data. */
export const LOCAL_METADATA_TABLE = 'local_metadata';

/**
 * Replaces the instance's local metadata with `entries`, without binary logging: the restored copy
 * may carry its source's table, and these rows must never replicate or move the GTID position.
 */
export async function writeLocalMetadata(
  connection: Connection,
  entries: Readonly<Record<string, string>>,
): Promise<void> {
  const table = qualifiedName(STEPBACK_SCHEMA, LOCAL_METADATA_TABLE);
  await connection.query('SET SESSION sql_log_bin = 0');
  try {
    await connection.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(STEPBACK_SCHEMA)}`);
    await connection.query(
      `CREATE TABLE IF NOT EXISTS ${table} (name VARCHAR(255) NOT NULL PRIMARY KEY, value MEDIUMTEXT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    );
    await connection.query(`DELETE FROM ${table}`);
    for (const [name, value] of Object.entries(entries)) {
      await connection.query(`INSERT INTO ${table} (name, value) VALUES (?, ?)`, [name, value]);
    }
  } finally {
    await connection.query('SET SESSION sql_log_bin = 1');
  }
}
