import { StepbackError } from '../../../../core/errors.ts';
import type { FlavorName } from '../../../../core/gtid.ts';
import { type Connection, queryRows } from '../../../mysql/connection.ts';

/** The source's server: which flavor, and whether its binary log can feed a catch-up. */
export interface SourceServer {
  flavor: FlavorName;
  version: string;
}

/**
 * Refuses a source whose binary log cannot be applied row by row: no binary log, statements instead
 * of rows, partial row images (an update without its before image cannot be routed by key range),
 * no column metadata, or MySQL's compressed transactions (which the reader cannot decode).
 */
export async function checkSourceBinlog(connection: Connection, where: string): Promise<SourceServer> {
  const [row] = await queryRows<Record<string, string | number | null>>(
    connection,
    'SELECT VERSION() AS version, @@GLOBAL.log_bin AS log_bin, @@GLOBAL.binlog_format AS format, @@GLOBAL.binlog_row_image AS image, @@GLOBAL.binlog_row_metadata AS metadata',
  );
  const version = String(row?.version ?? '');
  const flavor: FlavorName = /mariadb/i.test(version) ? 'mariadb' : 'mysql';
  const refuse = (what: string, setting: string) =>
    new StepbackError(`the binary log of ${where} ${what}: catch-up applies row events with full images`, {
      hint: `set ${setting} on the source (SET GLOBAL, and in its my.cnf), then take a new snapshot and run it again`,
    });
  if (Number(row?.log_bin) !== 1) throw refuse('is off', 'log_bin (log-bin=mysql-bin; needs a restart)');
  if (String(row?.format).toUpperCase() !== 'ROW')
    throw refuse(`is ${row?.format}, not ROW`, 'binlog_format=ROW');
  if (String(row?.image).toUpperCase() !== 'FULL')
    throw refuse(`has ${row?.image} row images`, 'binlog_row_image=FULL');
  if (String(row?.metadata).toUpperCase() !== 'FULL')
    throw refuse(`has ${row?.metadata} row metadata`, 'binlog_row_metadata=FULL');
  if (flavor === 'mysql') {
    const [compression] = await queryRows<{ on: number | string }>(
      connection,
      'SELECT @@GLOBAL.binlog_transaction_compression AS `on`',
    );
    if (Number(compression?.on) === 1)
      throw refuse('compresses transactions', 'binlog_transaction_compression=OFF');
  }
  return { flavor, version };
}
