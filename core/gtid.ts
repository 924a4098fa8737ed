import { z } from 'zod';

/**
 * GTID positions travel through manifests (untrusted) into `SET GLOBAL gtid_slave_pos='…'` and
 * `MASTER_GTID_WAIT('…')`, so their syntax is checked strictly before any use.
 */

export const FlavorName = z.enum(['mariadb', 'mysql']);
export type FlavorName = z.infer<typeof FlavorName>;

/** MariaDB: `domain-server-sequence` triples, comma separated, e.g. `0-1-100,1-2-7`. */
const mariadbGtidList = /^(\d{1,10}-\d{1,10}-\d{1,20})(,\d{1,10}-\d{1,10}-\d{1,20})*$/;

/** MySQL: `uuid[:tag]:interval[:interval…]` sets, comma separated (8.3+ allows tags). */
const mysqlUuid = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
const mysqlInterval = '\\d{1,20}(-\\d{1,20})?';
const mysqlSid = `${mysqlUuid}(:[a-z_][a-z0-9_]{0,31})?(:${mysqlInterval})+`;
const mysqlGtidSet = new RegExp(`^${mysqlSid}(,\\s*${mysqlSid})*$`);

/** True when `value` is a syntactically valid (possibly empty) GTID set of `flavor`. */
export function isValidGtidSet(flavor: FlavorName, value: string): boolean {
  if (value === '') return true;
  return flavor === 'mariadb' ? mariadbGtidList.test(value) : mysqlGtidSet.test(value.replace(/\n/g, ''));
}

/** Either flavor's syntax; the manifest checks it against its own flavor afterwards. */
export const GtidSetText = z
  .string()
  .max(1 << 20)
  .refine((value) => isValidGtidSet('mariadb', value) || isValidGtidSet('mysql', value), {
    message: 'is not a GTID set',
  });
