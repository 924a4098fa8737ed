import { UsageError } from '../../../../core/errors.ts';
import type { StoredProgramDefinition } from '../../../../core/manifest.ts';
import { type Connection, qualifiedName, queryRows } from '../../../mysql/connection.ts';

/**
 * The triggers, stored procedures and functions, and events of a database, as SHOW CREATE prints
 * them with the sql_mode, client character set and collation (and, for events, time zone) they were
 * created under: a body is parsed under those again when it is created on the destination.
 */

const SHOW = {
  procedure: { statement: 'PROCEDURE', column: 'Create Procedure' },
  function: { statement: 'FUNCTION', column: 'Create Function' },
  trigger: { statement: 'TRIGGER', column: 'SQL Original Statement' },
  event: { statement: 'EVENT', column: 'Create Event' },
} as const;

export interface ProgramFilter {
  /** Triggers are carried for these tables only. */
  tables: ReadonlySet<string>;
  /** Procedures, functions and events too (not for a vertical split, which moves tables only). */
  routinesAndEvents: boolean;
}

/** Reads the database's programs; triggers in the order they fire, for each table. */
export async function readStoredPrograms(
  connection: Connection,
  database: string,
  filter: ProgramFilter,
): Promise<StoredProgramDefinition[]> {
  const listed = await queryRows<{ kind: string; name: string; table: string | null }>(
    connection,
    `SELECT kind, name, \`table\` FROM (
       SELECT 1 AS rank_, LOWER(ROUTINE_TYPE) AS kind, ROUTINE_NAME AS name, NULL AS \`table\`, 0 AS action_order FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?
       UNION ALL SELECT 2, 'trigger', TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_ORDER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
       UNION ALL SELECT 3, 'event', EVENT_NAME, NULL, 0 FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?
     ) AS programs ORDER BY rank_, \`table\`, action_order, name`,
    [database, database, database],
  );
  const unsupported = listed.filter((p) => !(p.kind in SHOW));
  if (unsupported.length > 0 && filter.routinesAndEvents) {
    throw new UsageError(
      `snapshots carry procedures, functions, triggers and events; ${unsupported.map((p) => `${JSON.stringify(p.name)} is a ${p.kind}`).join(', ')}`,
      { hint: 'take it out of the database, or snapshot only tables with --tables' },
    );
  }
  const programs: StoredProgramDefinition[] = [];
  for (const { kind, name, table } of listed) {
    if (!(kind in SHOW)) continue;
    const k = kind as keyof typeof SHOW;
    if (k === 'trigger' ? !filter.tables.has(table ?? '') : !filter.routinesAndEvents) continue;
    const [row] = await queryRows<Record<string, string | null>>(
      connection,
      `SHOW CREATE ${SHOW[k].statement} ${qualifiedName(database, name)}`,
    );
    const create = row?.[SHOW[k].column];
    if (!row || !create) {
      throw new UsageError(`cannot read the definition of ${k} ${database}.${name}`, {
        hint: `the snapshot's user needs SELECT on mysql.proc (MariaDB) or SHOW_ROUTINE (MySQL), TRIGGER and EVENT on ${database}`,
      });
    }
    programs.push({
      kind: k,
      name,
      ...(k === 'trigger' ? { table: table! } : {}),
      create,
      sqlMode: String(row.sql_mode ?? ''),
      characterSetClient: String(row.character_set_client),
      collationConnection: String(row.collation_connection),
      ...(k === 'event' ? { timeZone: String(row.time_zone) } : {}),
    });
  }
  return programs;
}
