import { ExistingDataError } from '../../../../core/errors.ts';
import type { Logger } from '../../../../core/log.ts';
import { type Connection, qualifiedName } from '../../../mysql/connection.ts';
import { ensureLedger, forgetTable, readLedger, readRun, startRun } from './ledger.ts';
import type { FileJob } from './load.ts';
import { interleave, type RestorePlan, sourceKey } from './plan.ts';
import {
  existingPrograms,
  ProgramCreator,
  type ReplacedDefiner,
  refuseExistingPrograms,
  resolveDefiners,
} from './programs.ts';
import { createTables, createViews, dropObjects, existingObjects } from './schema.ts';

export interface DestinationOptions {
  database: string;
  /** Replace the tables and views the snapshots hold when the database already has tables. */
  force: boolean;
  /** Replace triggers, routines and events of the names the snapshots hold. */
  replaceStoredPrograms: boolean;
  /** Define views and programs whose DEFINER does not exist here as the loading user. */
  definerFallback: boolean;
  logger: Logger;
}

export interface PreparedDestination {
  /** An earlier run of the same sources is continued. */
  resumed: boolean;
  /** Creates the triggers and events once their data is in (routines are created already). */
  programs: ProgramCreator;
  replacedDefiners: ReplacedDefiner[];
}

/**
 * Makes the destination ready to load into: continues an earlier run of the same sources if the
 * database still holds its tables, else refuses a database that holds tables (unless forced) or
 * triggers, routines or events of the snapshot's names (unless asked to replace them), and starts a
 * new run; refuses DEFINERs that do not exist here (unless told to fall back to the loading user);
 * then creates what is missing: tables, routines (views may call them; nothing calls them during
 * the load), views. `programConnection` is the session programs are created in.
 */
export async function prepareDestination(
  admin: Connection,
  programConnection: Connection,
  plan: RestorePlan,
  options: DestinationOptions,
): Promise<PreparedDestination> {
  const { database, logger } = options;
  await ensureLedger(admin);
  const keys = plan.sources.map(sourceKey);
  const run = await readRun(admin, database);
  const existing = await existingObjects(admin, database);
  const resumed =
    run !== undefined && existing.length > 0 && JSON.stringify(run.sources) === JSON.stringify(keys);
  if (resumed) {
    logger.warn(
      run.finished
        ? `${database} was already loaded from these sources; checking the ledger`
        : `resuming the interrupted multirestore into ${database}`,
    );
  }
  const definers = await resolveDefiners(admin, plan, options.definerFallback);
  const names = new Set([...plan.tables, ...plan.views].map((t) => t.name));
  if (!resumed) {
    if (existing.length > 0 && !options.force) {
      const listed = existing.slice(0, 5).map((o) => o.name);
      throw new ExistingDataError(
        `database ${database} already holds ${existing.length} tables and views (${listed.join(', ')}${existing.length > 5 ? ', …' : ''})${run ? `, loaded from ${run.sources.join(', ')}` : ''}`,
        {
          hint: 'restore into another database, or pass --force to replace the tables and views the snapshots hold',
        },
      );
    }
    refuseExistingPrograms(plan, await existingPrograms(admin, database), {
      replace: options.replaceStoredPrograms,
      droppedTables: options.force ? names : new Set(),
      database,
    });
    if (existing.length > 0) await dropObjects(admin, database, names, existing, logger);
    await startRun(admin, database, keys);
  }
  const created = await createTables(
    admin,
    database,
    plan.tables.map((table) => ({ table, checked: plan.checked.get(table.name)! })),
    { charset: plan.charset, collation: plan.collation },
    logger,
  );
  // A table that had to be created again lost whatever the ledger says was loaded into it.
  if (resumed) for (const table of created) await forgetTable(admin, database, table);
  const programs = new ProgramCreator(programConnection, {
    database,
    keepsDefiner: definers.keeps,
    // A resumed run may have created some already.
    replace: options.replaceStoredPrograms || resumed,
    logger,
  });
  for (const checked of plan.programs) {
    if (checked.program.kind === 'procedure' || checked.program.kind === 'function')
      await programs.create(checked);
  }
  await createViews(
    admin,
    database,
    plan.views.map((view) => ({
      name: view.name,
      create: plan.checkedViews
        .get(view.name)!
        .statement(definers.keeps(`view ${JSON.stringify(view.name)}`)),
    })),
    logger,
  );
  return { resumed, programs, replacedDefiners: definers.replaced };
}

export interface PendingFiles {
  /** Files the ledger does not list as loaded, interleaved by table. */
  jobs: FileJob[];
  /** InnoDB: a file's rows and its ledger row commit together. */
  transactional: (table: string) => boolean;
}

/**
 * The files still to load. A non-transactional table with a file marked `loading` (a crash between
 * its LOAD DATA and the ledger update) cannot roll that file back: it is emptied and all its files
 * are loaded again.
 */
export async function pendingFiles(
  admin: Connection,
  database: string,
  plan: RestorePlan,
  logger: Logger,
): Promise<PendingFiles> {
  const engines = new Map((await existingObjects(admin, database)).map((o) => [o.name, o.engine]));
  const transactional = (table: string) => engines.get(table)?.toLowerCase() === 'innodb';
  const emptied = new Set<string>();
  for (const entry of await readLedger(admin, database)) {
    if (entry.state !== 'loading' || transactional(entry.table) || emptied.has(entry.table)) continue;
    logger.warn(
      `table ${entry.table} (${engines.get(entry.table)}, not transactional) was being loaded when the last run stopped: emptying it to load all its files again`,
    );
    await admin.query(`TRUNCATE TABLE ${qualifiedName(database, entry.table)}`);
    await forgetTable(admin, database, entry.table);
    emptied.add(entry.table);
  }
  const loaded = new Set(
    (await readLedger(admin, database))
      .filter((entry) => entry.state === 'loaded')
      .map((entry) => `${entry.sourceIndex}/${entry.file}`),
  );
  const jobs = interleave(plan.files.filter((job) => !loaded.has(`${job.source.index}/${job.file.name}`)));
  return { jobs, transactional };
}
