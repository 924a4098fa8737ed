import fs from 'node:fs/promises';
import path from 'node:path';
import { keepFirstError } from '../../core/errors.ts';
import type { MultirestoreRequest } from '../../core/operations/multirestore.ts';
import type { BackupStorage } from '../../core/storage/types.ts';
import type { EngineContext } from '../engines/engine.ts';
import { otherDatabasesThan } from '../engines/logical/multirestore/ddl.ts';
import { pendingFiles, prepareDestination } from '../engines/logical/multirestore/destination.ts';
import { addMissingIndexes } from '../engines/logical/multirestore/indexes.ts';
import { finishRun, writeCheckpoints } from '../engines/logical/multirestore/ledger.ts';
import { loadFiles } from '../engines/logical/multirestore/multirestore.ts';
import { type DestinationServer, planRestore, sourceKey } from '../engines/logical/multirestore/plan.ts';
import type { ReplacedDefiner } from '../engines/logical/multirestore/programs.ts';
import { fetchDirName } from '../engines/logical/multirestore/recovery.ts';
import { prepareSession, SessionPool } from '../engines/logical/multirestore/sessions.ts';
import { chooseSources } from '../engines/logical/multirestore/sources.ts';
import { releaseNumber } from '../engines/logical/multirestore/sql-tokens.ts';
import { changeInstance } from '../instance/lifecycle.ts';
import { serverFileDirectory } from '../instance/server-files.ts';
import { type Connection, queryRows, queryValue } from '../mysql/connection.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import { openInstance, withRequestStorage } from './open.ts';
import type { OperationContext, RequestOf } from './operation.ts';

export interface MultirestoreResult {
  database: string;
  sources: { dir: string; name: string; keyRange: string; position: string; rows: number }[];
  tables: number;
  views: number;
  /** Tables whose secondary indexes were built after their rows were loaded. */
  indexesAfterLoad: string[];
  /** Triggers, procedures and functions, and events created; `skipped`: left out by --skip-stored-programs. */
  storedPrograms: {
    triggers: number;
    procedures: number;
    functions: number;
    events: number;
    skipped: number;
  };
  /** Views and programs whose DEFINER did not exist here, defined by the loading user (--definer-fallback). */
  definersReplaced: ReplacedDefiner[];
  files: { total: number; loaded: number; alreadyLoaded: number };
  /** Rows loaded by this run. */
  rows: number;
  /** Stored bytes fetched by this run. */
  bytes: number;
  /** An interrupted run of the same sources was continued. */
  resumed: boolean;
  checkpoints: boolean;
  seconds: number;
}

const FLAG_DONT_START = 'dont-start';

/** The destination server's release and its other databases: what manifest statements are checked against. */
async function destinationServer(
  daemon: MysqlDaemon,
  connection: Connection,
  database: string,
): Promise<DestinationServer> {
  const version = String(await queryValue(connection, 'SELECT VERSION()'));
  const databases = await queryRows<{ name: string }>(
    connection,
    'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA',
  );
  return {
    release: { flavor: daemon.flavor.name, version: releaseNumber(version) },
    otherDatabases: otherDatabasesThan(
      database,
      databases.map((row) => row.name),
    ),
  };
}

/**
 * Loads one or more logical snapshots into one database: a merge of several sources, one range of
 * a horizontal split, or the tables of a vertical split. Resumable: a per-file ledger in the
 * destination makes a re-run after a crash load only what is missing, never a row twice.
 */
export async function multirestoreInstance(
  daemon: MysqlDaemon,
  storage: BackupStorage,
  request: MultirestoreRequest,
  context: EngineContext,
): Promise<MultirestoreResult> {
  const started = Date.now();
  const { logger } = context;
  const { database } = request;
  const sources = await chooseSources(storage, request.sources, logger);

  return changeInstance(
    daemon,
    { operation: 'multirestore', logger, needsRunning: 'multirestore loads into the running server' },
    async ({ lease }) => {
      const connections: Connection[] = [];
      const connect = async (db?: string) => {
        const connection = await daemon.connect(db ? { database: db } : {});
        connections.push(connection);
        return connection;
      };
      const session = { writeBinlogs: request.writeBinlogs };
      const pool = new SessionPool(request.insertConcurrency, async () => {
        const connection = await connect(database);
        await prepareSession(connection, session);
        return connection;
      });
      let fetchDir: string | undefined;
      let failure: unknown;
      let result: MultirestoreResult | undefined;
      try {
        // Files are fetched (verified, decompressed) where the server may read them, then loaded with
        // LOAD DATA INFILE. Streaming them with LOAD DATA LOCAL measured no faster here, would load rows
        // before their hash is checked, and needs local_infile (off by default on MySQL 8).
        const workDir = await serverFileDirectory(daemon, 'read files for LOAD DATA');
        await lease.record({ details: { workDir } });
        fetchDir = path.join(workDir, fetchDirName());
        await fs.rm(fetchDir, { recursive: true, force: true });
        await fs.mkdir(fetchDir, { mode: 0o755 });

        const admin = await connect();
        await prepareSession(admin, session);
        // Every statement of the manifests is checked before anything is created.
        const plan = planRestore(sources, await destinationServer(daemon, admin, database), {
          skipStoredPrograms: request.skipStoredPrograms,
        });
        if (plan.skippedPrograms > 0)
          logger.warn(
            `leaving out the ${plan.skippedPrograms} triggers, routines and events of the snapshots (--skip-stored-programs)`,
          );
        const programConnection = await connect();
        await prepareSession(programConnection, session);
        const { resumed, programs, replacedDefiners } = await prepareDestination(
          admin,
          programConnection,
          plan,
          {
            database,
            force: request.force,
            replaceStoredPrograms: request.replaceStoredPrograms,
            definerFallback: request.definerFallback,
            logger,
          },
        );
        const triggersOf = (table: string) =>
          plan.programs.filter(({ program }) => program.kind === 'trigger' && program.table === table);
        const { jobs, transactional } = await pendingFiles(admin, database, plan, logger);
        if (resumed)
          logger.info(`${plan.files.length - jobs.length} of ${plan.files.length} files are already loaded`);
        const loaded = await loadFiles(jobs, plan, {
          database,
          fetchConcurrency: request.fetchConcurrency,
          insertConcurrency: request.insertConcurrency,
          tableConcurrency: request.tableConcurrency,
          logger,
          onProgress: context.progress,
          signal: context.signal,
          fetchDir,
          pool,
          transactional,
          connect: () => daemon.connect(),
          // Indexes built over the loaded rows; triggers after the last file, so the load does not fire them.
          afterTable: async (table) => {
            const indexes = plan.indexesAfterLoad.get(table);
            if (indexes) await pool.use((c) => addMissingIndexes(c, database, table, indexes));
            for (const trigger of triggersOf(table)) await programs.create(trigger);
          },
        });
        // Events last: none runs before the data is in.
        for (const event of plan.programs.filter(({ program }) => program.kind === 'event'))
          await programs.create(event);

        if (request.checkpoints) {
          await writeCheckpoints(
            admin,
            database,
            plan.sources.map((source) => ({
              sourceIndex: source.index,
              source: sourceKey(source),
              position: source.manifest.position,
              flags: request.dontStartReplication ? FLAG_DONT_START : '',
            })),
          );
        }
        await finishRun(admin, database);
        const count = (kind: string) => plan.programs.filter(({ program }) => program.kind === kind).length;
        for (const { object, definer } of replacedDefiners)
          logger.warn(`${object} is defined by the loading user: its DEFINER ${definer} does not exist here`);
        result = {
          database,
          sources: plan.sources.map((source) => ({
            dir: source.dir,
            name: source.handle.name,
            keyRange: source.manifest.keyRange,
            position: source.manifest.position,
            rows: source.manifest.files.reduce((sum, file) => sum + file.rows, 0),
          })),
          tables: plan.tables.length,
          views: plan.views.length,
          indexesAfterLoad: [...plan.indexesAfterLoad.keys()],
          storedPrograms: {
            triggers: count('trigger'),
            procedures: count('procedure'),
            functions: count('function'),
            events: count('event'),
            skipped: plan.skippedPrograms,
          },
          definersReplaced: replacedDefiners,
          files: {
            total: plan.files.length,
            loaded: jobs.length,
            alreadyLoaded: plan.files.length - jobs.length,
          },
          rows: loaded.rows,
          bytes: loaded.bytes,
          resumed,
          checkpoints: request.checkpoints,
          seconds: (Date.now() - started) / 1000,
        };
      } catch (error) {
        failure = error;
      }
      const cleanups: (() => Promise<void>)[] = [
        () => pool.close(),
        async () => {
          await Promise.all(connections.map((c) => c.end().catch(() => c.destroy())));
        },
        async () => {
          if (fetchDir) await fs.rm(fetchDir, { recursive: true, force: true });
        },
      ];
      for (const cleanup of cleanups) {
        try {
          await cleanup();
        } catch (error) {
          failure = keepFirstError(logger, failure, error);
        }
      }
      if (failure !== undefined) throw failure;
      return result!;
    },
  );
}

/** `stepback multirestore`, and a state machine's multirestore task. */
export function runMultirestore(
  request: RequestOf<'multirestore'>,
  context: OperationContext,
): Promise<MultirestoreResult> {
  return withRequestStorage(request, context, async (storage) =>
    multirestoreInstance(await openInstance(request, context.logger), storage, request, context),
  );
}
