import { type Connection, queryRows } from '../mysql/connection.ts';

/** stepback's own schema on an instance (local metadata); never user data. */
export const STEPBACK_SCHEMA = '_stepback';

const systemSchemas = new Set(['mysql', 'information_schema', 'performance_schema', 'sys']);

/**
 * Whether `name` is a user's database: not a system schema, not stepback's own, and not a
 * directory MariaDB merely lists as `#mysql50#name` (lost+found on a mount point).
 */
export function isUserDatabase(name: string): boolean {
  return !systemSchemas.has(name.toLowerCase()) && name !== STEPBACK_SCHEMA && !name.startsWith('#mysql50#');
}

/** The user databases of a running instance that hold at least one table or view, sorted. */
export async function userDatabasesWithTables(connection: Connection): Promise<string[]> {
  const rows = await queryRows<{ db: string }>(
    connection,
    'SELECT DISTINCT table_schema AS db FROM information_schema.tables ORDER BY table_schema',
  );
  return rows.map((row) => String(row.db)).filter(isUserDatabase);
}
