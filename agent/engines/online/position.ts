import { StepbackError } from '../../../core/errors.ts';
import { isValidGtidSet } from '../../../core/gtid.ts';

/**
 * The position an online backup's data holds, from what mariabackup wrote into its stream while
 * commits were blocked (BACKUP STAGE BLOCK_COMMIT). MariaDB 10.11 names the files
 * `xtrabackup_binlog_info` (`<binlog file>\t<offset>\t<gtid_binlog_pos>`) and, with --slave-info,
 * `xtrabackup_slave_info` (`SET GLOBAL gtid_slave_pos = '<pos>'; CHANGE MASTER TO …`); later
 * releases call them `mariadb_backup_*`.
 */

export const BINLOG_INFO_FILES = ['xtrabackup_binlog_info', 'mariadb_backup_binlog_info'];
export const REPLICA_INFO_FILES = ['xtrabackup_slave_info', 'mariadb_backup_slave_info'];

/** The GTID set of a binlog info file; '' when the server writes no binary log. */
export function binlogInfoPosition(text: string | undefined): string {
  if (text === undefined) return '';
  const fields = text.trim().split('\t');
  const gtid = fields[2]?.trim() ?? '';
  if (!isValidGtidSet('mariadb', gtid)) {
    throw new StepbackError(
      `mariabackup reported a binlog position without a valid GTID set: ${JSON.stringify(text)}`,
    );
  }
  return gtid;
}

/** gtid_slave_pos from a replica info file; '' when the replica does not replicate with GTIDs. */
export function replicaInfoPosition(text: string | undefined): string {
  const gtid = /gtid_slave_pos\s*=\s*'([^']*)'/i.exec(text ?? '')?.[1] ?? '';
  if (!isValidGtidSet('mariadb', gtid)) {
    throw new StepbackError(
      `mariabackup reported a replica position that is not a GTID set: ${JSON.stringify(text)}`,
    );
  }
  return gtid;
}

/**
 * What the data contains, as @@gtid_current_pos would say: per replication domain, the later of
 * the binlog's and the replica's GTID (a replica without log_slave_updates binlogs none of what it
 * applied).
 */
export function mergePositions(...positions: string[]): string {
  const byDomain = new Map<number, { gtid: string; seq: bigint }>();
  for (const position of positions) {
    for (const gtid of position
      .split(',')
      .map((g) => g.trim())
      .filter(Boolean)) {
      const [domain, , seq] = gtid.split('-');
      const current = byDomain.get(Number(domain));
      if (!current || BigInt(seq!) > current.seq) byDomain.set(Number(domain), { gtid, seq: BigInt(seq!) });
    }
  }
  return [...byDomain.entries()]
    .sort(([a], [b]) => a - b)
    .map(([, { gtid }]) => gtid)
    .join(',');
}
