import { messageOf, StepbackError } from '../../../../core/errors.ts';
import type { Logger } from '../../../../core/log.ts';
import type { TableDefinition } from '../../../../core/manifest.ts';
import { type Connection, qualifiedName, queryRows, quoteIdentifier } from '../../../mysql/connection.ts';
import type { CheckedTable } from './ddl.ts';

/** A table or view of the destination database. */
export interface ExistingObject {
  name: string;
  type: 'table' | 'view';
  engine: string | null;
}

export async function existingObjects(connection: Connection, database: string): Promise<ExistingObject[]> {
  const rows = await queryRows<{ name: string; type: string; engine: string | null }>(
    connection,
    'SELECT TABLE_NAME AS name, TABLE_TYPE AS type, ENGINE AS engine FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME',
    [database],
  );
  return rows.map((row) => ({
    name: row.name,
    type: row.type === 'VIEW' ? 'view' : 'table',
    engine: row.engine,
  }));
}

/** Drops the destination's tables and views that the snapshots hold (for --force). */
export async function dropObjects(
  connection: Connection,
  database: string,
  names: ReadonlySet<string>,
  existing: readonly ExistingObject[],
  logger: Logger,
): Promise<void> {
  for (const object of existing) {
    if (!names.has(object.name)) continue;
    logger.warn(`dropping ${object.type} ${database}.${object.name} (--force)`);
    await connection.query(
      `DROP ${object.type === 'view' ? 'VIEW' : 'TABLE'} IF EXISTS ${qualifiedName(database, object.name)}`,
    );
  }
}

/**
 * Creates the database if needed (with the source's default character set and collation), then the
 * tables that do not exist yet (checked statements, unqualified, run with the destination as current
 * database). Returns the tables it created.
 */
export async function createTables(
  connection: Connection,
  database: string,
  tables: readonly { table: TableDefinition; checked: CheckedTable }[],
  defaults: { charset: string | undefined; collation: string | undefined },
  logger: Logger,
): Promise<string[]> {
  // Both names passed the manifest's character set name pattern: letters, digits, underscores.
  const options = [
    defaults.charset ? ` CHARACTER SET ${defaults.charset}` : '',
    defaults.collation ? ` COLLATE ${defaults.collation}` : '',
  ].join('');
  await connection.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(database)}${options}`);
  const [found] = await queryRows<{ charset: string; collation: string }>(
    connection,
    'SELECT DEFAULT_CHARACTER_SET_NAME AS charset, DEFAULT_COLLATION_NAME AS collation FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
    [database],
  );
  if (defaults.collation && found && found.collation !== defaults.collation) {
    logger.warn(
      `database ${database} already exists with collation ${found.collation}; the source's was ${defaults.collation} (left as it is)`,
    );
  }
  await connection.query(`USE ${quoteIdentifier(database)}`);
  const existing = new Set((await existingObjects(connection, database)).map((o) => o.name));
  const created: string[] = [];
  for (const { table, checked } of tables) {
    if (existing.has(table.name)) continue;
    logger.debug(`creating table ${database}.${table.name}`);
    await connection.query(checked.create);
    created.push(table.name);
  }
  return created;
}

/**
 * Creates the views that do not exist yet (checked statements), after the tables. A view may read
 * another view: those that fail because something they read is missing are retried after the
 * others, until no pass creates anything more.
 */
export async function createViews(
  connection: Connection,
  database: string,
  views: readonly { name: string; create: string }[],
  logger: Logger,
): Promise<void> {
  await connection.query(`USE ${quoteIdentifier(database)}`);
  const existing = new Set((await existingObjects(connection, database)).map((o) => o.name));
  let pending = views.filter((view) => !existing.has(view.name));
  while (pending.length > 0) {
    const failed: typeof pending = [];
    let lastError: unknown;
    for (const item of pending) {
      try {
        await connection.query(item.create);
        logger.debug(`created view ${database}.${item.name}`);
      } catch (error) {
        const errno = (error as { errno?: number }).errno;
        // 1305: a stored function it calls does not exist.
        if (errno === 1305) {
          throw new StepbackError(`cannot create view ${JSON.stringify(item.name)}: ${messageOf(error)}`, {
            cause: error,
            hint: 'the view calls a stored function the database does not have: load the snapshot with its routines (without --skip-stored-programs), or create the function first',
          });
        }
        // 1146: a table or view it reads does not exist (yet).
        if (errno !== 1146) throw error;
        failed.push(item);
        lastError = error;
      }
    }
    if (failed.length === pending.length) {
      throw new StepbackError(
        `cannot create ${failed.map((item) => `view ${JSON.stringify(item.name)}`).join(', ')}: ${messageOf(lastError)}`,
        {
          cause: lastError,
          hint: 'a view reads a table the snapshot does not hold: snapshot it too (--tables), or leave the view out',
        },
      );
    }
    pending = failed;
  }
}
