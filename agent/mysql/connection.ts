import mysql from 'mysql2/promise';
import { hint, option, StepbackError, UsageError } from '../../core/errors.ts';

export type Connection = mysql.Connection;

/** Where and as whom to connect: a Unix socket (the agent on its host) or TCP. */
export interface ConnectionTarget {
  socket?: string | undefined;
  host?: string | undefined;
  port?: number | undefined;
  user: string;
  password?: string | undefined;
  database?: string | undefined;
}

/**
 * A connection with the settings every stepback query relies on: numbers beyond 2^53 and DECIMALs
 * as strings, dates as the server's text, utf8mb4, one statement per query.
 */
export async function connect(
  target: ConnectionTarget,
  options: { connectTimeoutMs?: number } = {},
): Promise<Connection> {
  try {
    return await mysql.createConnection({
      ...(target.socket
        ? { socketPath: target.socket }
        : { host: target.host ?? '127.0.0.1', port: target.port ?? 3306 }),
      user: target.user,
      password: target.password ?? '',
      ...(target.database ? { database: target.database } : {}),
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      charset: 'utf8mb4_general_ci',
      multipleStatements: false,
      connectTimeout: options.connectTimeoutMs ?? 10_000,
    });
  } catch (error) {
    const where = target.socket
      ? `socket ${target.socket}`
      : `${target.host ?? '127.0.0.1'}:${target.port ?? 3306}`;
    throw new StepbackError(
      `cannot connect to MySQL at ${where} as ${target.user}: ${(error as Error).message}`,
      {
        cause: error,
        hint: 'check that mysqld is running and that the user and password are right',
      },
    );
  }
}

/** `name` as a quoted identifier: backticks, with embedded backticks doubled. */
export function quoteIdentifier(name: string): string {
  if (name.length === 0 || name.includes('\0'))
    throw new UsageError(`invalid identifier ${JSON.stringify(name)}`);
  return `\`${name.replace(/`/g, '``')}\``;
}

/** `db`.`table` */
export function qualifiedName(database: string, table: string): string {
  return `${quoteIdentifier(database)}.${quoteIdentifier(table)}`;
}

/** Runs one statement and returns its rows. */
export async function queryRows<T = Record<string, unknown>>(
  connection: Connection,
  sql: string,
  values?: unknown[],
): Promise<T[]> {
  const [rows] = await connection.query(sql, values);
  return rows as T[];
}

/** The single value of a one-row, one-column query (undefined when there is no row). */
export async function queryValue<T = unknown>(
  connection: Connection,
  sql: string,
  values?: unknown[],
): Promise<T> {
  const rows = await queryRows<Record<string, unknown>>(connection, sql, values);
  const first = rows[0];
  return (first ? Object.values(first)[0] : undefined) as T;
}

/**
 * A `mysql://user@host:port/db` or `mysql://user@localhost/db?socket=/path` URI. The password never
 * comes from the URI (it would show in `ps`): the caller passes it from an environment variable.
 */
export function parseMysqlUri(uri: string, password?: string): ConnectionTarget {
  let parsed: URL;
  try {
    parsed = new URL(uri);
  } catch {
    throw new UsageError(`${JSON.stringify(uri)} is not a mysql:// URI`, {
      hint: 'use mysql://user@host:port/db or mysql://user@localhost/db?socket=/path/mysqld.sock',
    });
  }
  if (parsed.protocol !== 'mysql:') throw new UsageError(`${uri} must start with mysql://`);
  if (parsed.password) {
    throw new UsageError(`${parsed.protocol}//${parsed.username}:…@${parsed.host} has a password in it`, {
      hint: hint`pass the password through an environment variable (${option('leftPasswordEnv')} / ${option('rightPasswordEnv')})`,
    });
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  const socket = parsed.searchParams.get('socket') ?? undefined;
  return {
    user: decodeURIComponent(parsed.username) || 'root',
    password,
    database: database || undefined,
    ...(socket
      ? { socket }
      : { host: parsed.hostname || '127.0.0.1', port: parsed.port ? Number(parsed.port) : 3306 }),
  };
}
