import { ExistingDataError } from '../../../../core/errors.ts';
import type { Logger } from '../../../../core/log.ts';
import { Semaphore } from '../../../../core/stream/concurrency.ts';
import { type Connection, qualifiedName, queryRows, quoteIdentifier } from '../../../mysql/connection.ts';
import { type Account, describeAccount, missingAccounts, refuseMissingDefiners } from './definers.ts';
import type { RestorePlan } from './plan.ts';
import { type CheckedProgram, describeProgram } from './program-ddl.ts';

/**
 * Triggers, routines and events on the destination: which ones the snapshot would replace, whose
 * DEFINER exists there, and creating them under the session settings they were written under.
 */

type ProgramKind = CheckedProgram['program']['kind'];

export interface ExistingProgram {
  kind: ProgramKind;
  name: string;
  /** A trigger's table. */
  table: string | undefined;
}

export async function existingPrograms(connection: Connection, database: string): Promise<ExistingProgram[]> {
  const rows = await queryRows<{ kind: string; name: string; table: string | null }>(
    connection,
    `SELECT LOWER(ROUTINE_TYPE) AS kind, ROUTINE_NAME AS name, NULL AS \`table\` FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?
     UNION ALL SELECT 'trigger', TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
     UNION ALL SELECT 'event', EVENT_NAME, NULL FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?`,
    [database, database, database],
  );
  return rows.map((row) => ({
    kind: row.kind as ProgramKind,
    name: row.name,
    table: row.table ?? undefined,
  }));
}

/**
 * Refuses a destination that already has a trigger, routine or event of a name the snapshot holds,
 * unless asked to replace them (or the run is resumed: they are its own). Triggers of tables that
 * `--force` drops go with their tables.
 */
export function refuseExistingPrograms(
  plan: RestorePlan,
  existing: readonly ExistingProgram[],
  options: { replace: boolean; droppedTables: ReadonlySet<string>; database: string },
): void {
  if (options.replace) return;
  const wanted = new Set(plan.programs.map(({ program }) => JSON.stringify([program.kind, program.name])));
  const clashes = existing.filter(
    (program) =>
      wanted.has(JSON.stringify([program.kind, program.name])) &&
      !(program.table !== undefined && options.droppedTables.has(program.table)),
  );
  if (clashes.length === 0) return;
  throw new ExistingDataError(
    `database ${options.database} already has ${clashes
      .slice(0, 5)
      .map((program) => `${program.kind} ${JSON.stringify(program.name)}`)
      .join(', ')}${clashes.length > 5 ? ', …' : ''}, which the snapshot holds too`,
    { hint: 'pass --replace-stored-programs to replace them, or restore into another database' },
  );
}

/** Views and programs whose DEFINER is replaced by the loading user, as the result lists them. */
export interface ReplacedDefiner {
  object: string;
  definer: string;
}

/**
 * Which objects keep their DEFINER: all of them when every definer exists here; else, with
 * `fallback`, those whose definer exists (the others are defined by the loading user), and without
 * it an error naming the missing accounts.
 */
export async function resolveDefiners(
  connection: Connection,
  plan: RestorePlan,
  fallback: boolean,
): Promise<{ keeps: (object: string) => boolean; replaced: ReplacedDefiner[] }> {
  const objects: { object: string; account: Account }[] = [];
  for (const [name, view] of plan.checkedViews)
    if (view.definer) objects.push({ object: `view ${JSON.stringify(name)}`, account: view.definer });
  for (const checked of plan.programs)
    if (checked.definer) objects.push({ object: describeProgram(checked.program), account: checked.definer });
  const missing = new Set(
    (
      await missingAccounts(
        connection,
        objects.map((o) => o.account),
      )
    ).map(describeAccount),
  );
  const affected = objects.filter((o) => missing.has(describeAccount(o.account)));
  if (!fallback) refuseMissingDefiners(affected);
  const replaced = affected.map((o) => ({ object: o.object, definer: describeAccount(o.account) }));
  const names = new Set(replaced.map((r) => r.object));
  return { keeps: (object) => !names.has(object), replaced };
}

/** The character_set_client to create a program with (see docs/cli.md). */
function clientCharset(program: CheckedProgram['program']): string {
  // This connection sends UTF-8: a body in another client character set is exact only when ASCII.
  if (/^utf8/i.test(program.characterSetClient) || /^[\x01-\x7f]*$/.test(program.create))
    return program.characterSetClient;
  return 'utf8mb4';
}

/**
 * Creates programs one at a time on its own connection (each sets the session's sql_mode, character
 * set and time zone to the program's), replacing one of the same name when told to.
 */
export class ProgramCreator {
  readonly #connection: Connection;
  readonly #database: string;
  readonly #keepsDefiner: (object: string) => boolean;
  readonly #replace: boolean;
  readonly #logger: Logger;
  readonly #one = new Semaphore(1);

  constructor(
    connection: Connection,
    options: {
      database: string;
      keepsDefiner: (object: string) => boolean;
      replace: boolean;
      logger: Logger;
    },
  ) {
    this.#connection = connection;
    this.#database = options.database;
    this.#keepsDefiner = options.keepsDefiner;
    this.#replace = options.replace;
    this.#logger = options.logger;
  }

  async create(checked: CheckedProgram): Promise<void> {
    const { program } = checked;
    await this.#one.use(async () => {
      const connection = this.#connection;
      // Unqualified in the checked statement: it lands in the current database.
      await connection.query(`USE ${quoteIdentifier(this.#database)}`);
      if (this.#replace) {
        await connection.query(
          `DROP ${program.kind.toUpperCase()} IF EXISTS ${qualifiedName(this.#database, program.name)}`,
        );
      }
      await connection.query(
        'SET SESSION sql_mode = ?, SESSION character_set_client = ?, SESSION collation_connection = ?, SESSION time_zone = ?',
        [program.sqlMode, clientCharset(program), program.collationConnection, program.timeZone ?? '+00:00'],
      );
      await connection.query(checked.statement(this.#keepsDefiner(describeProgram(program))));
      this.#logger.debug(`created ${describeProgram(program)} in ${this.#database}`);
    });
  }
}
