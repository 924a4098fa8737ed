import os from 'node:os';
import { UsageError } from '../../core/errors.ts';
import { queryValue } from '../mysql/connection.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';

/**
 * The directory where the server may write (SELECT … INTO OUTFILE) and read (LOAD DATA INFILE)
 * files: secure_file_priv, or its tmpdir when that is unrestricted. `needFor` says what the caller
 * needs it for, in the refusal when file access is off.
 */
export async function serverFileDirectory(daemon: MysqlDaemon, needFor: string): Promise<string> {
  const secure = daemon.config.secureFilePriv;
  if (secure === undefined) {
    throw new UsageError(`secure_file_priv is NULL on this instance: the server may not ${needFor}`, {
      hint: 'set secure_file_priv to a directory (e.g. /var/lib/mysql-files) in my.cnf and restart mysqld',
    });
  }
  if (secure !== '') return secure;
  const tmpdir = String(await daemon.withConnection((c) => queryValue(c, 'SELECT @@GLOBAL.tmpdir')));
  return tmpdir.split(':')[0] || os.tmpdir();
}
