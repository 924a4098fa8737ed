import os from 'node:os';
import { readManifest } from '../../core/backups.ts';
import {
  DRILL_FILE,
  type DrillDifference,
  type DrillRecord,
  serializeDrillRecord,
} from '../../core/drills.ts';
import {
  ExistingDataError,
  HashMismatchError,
  MissingFileError,
  messageOf,
  NoBackupError,
  ServingHostError,
  StepbackError,
  StorageError,
  VerificationError,
} from '../../core/errors.ts';
import { EVIDENCE_METHOD, Identifier, type PhysicalManifest } from '../../core/manifest.ts';
import type { DrillRequest } from '../../core/operations/drill.ts';
import type { BackupStorage } from '../../core/storage/types.ts';
import { type DrillFindings, errorLogEnd, inspectRestoredCopy, noFindings } from '../drill/checks.ts';
import { physicalRestoreEngine } from '../engines/physical/restore.ts';
import { reachedPhase } from '../instance/fault.ts';
import { changeInstance } from '../instance/lifecycle.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import { openInstance, withRequestStorage } from './open.ts';
import type { OperationContext, RequestOf } from './operation.ts';
import { checkCompatible, userDatabases } from './restore.ts';

export interface DrillResult {
  dir: string;
  backup: string;
  storage: string;
  outcome: 'passed' | 'failed';
  drillHost: string;
  tablesChecked: number;
  tablesCheckedByServer: string[];
  evidence: boolean;
  differences: DrillDifference[];
  problems: string[];
  seconds: number;
  /** Where the outcome was written: `<dir>/<backup>/DRILL.json`. */
  record: string;
}

/** Refuses a drill host that the topology lists as serving any shard. */
async function refuseServingHost(request: DrillRequest, logger: OperationContext['logger']): Promise<void> {
  if (!request.topo) return;
  const hostId = request.hostId ?? os.hostname();
  const { openTopology } = await import('../../core/topology/index.ts');
  const { shardsServedBy } = await import('../../core/topology/serving.ts');
  const served = await shardsServedBy(await openTopology(request.topo, { logger }), hostId);
  if (served.length > 0) {
    throw new ServingHostError(
      `host ${hostId} serves ${served.join(', ')} in the topology: a drill stops and replaces its instance's data; nothing was changed`,
      { hint: 'drill on an instance kept for drills, on a host no shard lists' },
    );
  }
}

/** The table a physical file holds, from its path (`shop/orders.ibd` → shop.orders), when it names one. */
function tableOfFile(manifest: PhysicalManifest, stored: string): { database?: string; table?: string } {
  const file = manifest.files.find((f) => f.name === stored);
  const match = file && file.base === 'data' ? /^([^/]+)\/([^/]+)\.[A-Za-z]+$/.exec(file.path) : null;
  if (!match || !Identifier.safeParse(match[1]).success || !Identifier.safeParse(match[2]).success) return {};
  return { database: match[1]!, table: match[2]! };
}

const MAX_LISTED = 1000;
const clip = (text: string) => (text.length > 4000 ? `${text.slice(0, 4000)}…` : text);

/** What DRILL.json keeps of the findings: every message cut to size, at most MAX_LISTED of each list. */
function recordable(findings: DrillFindings): DrillFindings {
  const differences = findings.differences
    .slice(0, MAX_LISTED)
    .map((d) => ({ ...d, problem: clip(d.problem) }));
  const problems = findings.problems.slice(0, MAX_LISTED).map(clip);
  const more = findings.differences.length - differences.length;
  if (more > 0) problems.push(`and ${more} more differing tables or files, not listed`);
  return {
    ...findings,
    tablesCheckedByServer: findings.tablesCheckedByServer.slice(0, 10_000),
    differences,
    problems,
  };
}

/**
 * What a failed restore says about the backup: a stored file that does not check out, or a copy
 * that does not start, is the backup failing its drill. Storage that cannot be reached and an
 * interruption are not: they are thrown, and no outcome is written.
 */
function backupFault(
  error: unknown,
  manifest: PhysicalManifest,
  signal: AbortSignal,
  findings: DrillFindings,
): DrillFindings {
  if (signal.aborted || (error instanceof StorageError && !(error instanceof MissingFileError))) throw error;
  if (error instanceof HashMismatchError || error instanceof MissingFileError) {
    findings.differences.push({
      file: error.file,
      ...tableOfFile(manifest, error.file),
      problem: error.message,
    });
  } else if (error instanceof VerificationError) {
    findings.problems.push(error.message);
  } else {
    findings.problems.push(`the restored copy could not be started or checked: ${messageOf(error)}`);
  }
  return findings;
}

/**
 * Drills one backup: restores it onto the drill instance (staged and verified like any restore),
 * starts it without networking or replication, checks it (error log, CHECK TABLE on a sample, every
 * table's rows and checksum against the backup's evidence), then puts the drill instance's own files
 * back and leaves it as found. The outcome is written beside the backup as DRILL.json; the MANIFEST
 * is never changed.
 */
export async function drillBackup(
  daemon: MysqlDaemon,
  storage: BackupStorage,
  request: DrillRequest,
  context: OperationContext,
): Promise<DrillResult> {
  const { logger, signal } = context;
  await refuseServingHost(request, logger);
  const handle = storage.openBackup(request.dir, request.backup);
  if ((await handle.listFiles()).length === 0) {
    throw new NoBackupError(
      request.dir,
      `backup ${request.dir}/${request.backup} does not exist in ${storage.url}`,
      {
        hint: `list the backups with: stepback backups list --storage ${storage.url} --dir ${request.dir}`,
      },
    );
  }
  const manifest = await readManifest(handle, signal);
  if (manifest.engine !== 'physical') {
    throw new StepbackError(`backup ${request.dir}/${request.backup} is a ${manifest.engine} snapshot`, {
      hint: 'drills restore physical backups',
    });
  }
  checkCompatible(daemon, manifest);
  const startedAt = new Date();
  let findings = noFindings();
  await changeInstance(daemon, { operation: 'drill', logger }, async ({ original, lease }) => {
    const existing = await userDatabases(daemon, original.running);
    if (existing.length > 0) {
      throw new ExistingDataError(
        `the drill instance ${daemon.config.defaultsFile} holds user data (${existing.slice(0, 10).join(', ')}); nothing was changed`,
        { hint: 'drill on an instance kept for drills: initialised, with no user databases' },
      );
    }
    const errorLogFrom = await errorLogEnd(daemon.config.logError);
    logger.info(`drilling ${request.dir}/${request.backup} on ${daemon.config.defaultsFile}`);
    try {
      await physicalRestoreEngine.executeRestore({
        ...context,
        daemon,
        handle,
        manifest,
        lease,
        concurrency: request.concurrency,
        localMetadata: {},
        inspect: async () => {
          reachedPhase('drill:inspecting');
          await inspectRestoredCopy(
            { ...context, daemon, manifest, errorLogFrom, checkTables: request.checkTables },
            findings,
          );
        },
      });
    } catch (error) {
      // What the checks found before the failure stays in the record (CHECK TABLE naming a table).
      findings = backupFault(error, manifest, signal, findings);
    }
  });
  const finishedAt = new Date();
  const outcome = findings.differences.length + findings.problems.length === 0 ? 'passed' : 'failed';
  findings = recordable(findings);
  const record: DrillRecord = {
    formatVersion: 1,
    dir: request.dir,
    backup: request.backup,
    outcome,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationSeconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
    drillHost: os.hostname(),
    defaultsFile: daemon.config.defaultsFile,
    tablesChecked: findings.tablesChecked,
    tablesCheckedByServer: findings.tablesCheckedByServer,
    evidence: manifest.evidence?.method === EVIDENCE_METHOD,
    differences: findings.differences,
    problems: findings.problems,
  };
  await handle.writeRecord(DRILL_FILE, serializeDrillRecord(record));
  logger.info(
    `drill ${outcome}: ${findings.tablesChecked} tables compared, record ${request.dir}/${request.backup}/${DRILL_FILE}`,
  );
  return {
    dir: record.dir,
    backup: record.backup,
    storage: storage.url,
    outcome,
    drillHost: record.drillHost,
    tablesChecked: record.tablesChecked,
    tablesCheckedByServer: record.tablesCheckedByServer,
    evidence: record.evidence,
    differences: record.differences,
    problems: record.problems,
    seconds: record.durationSeconds,
    record: `${request.dir}/${request.backup}/${DRILL_FILE}`,
  };
}

/** `stepback drill`, and the Drill state machine's task. */
export function runDrill(request: RequestOf<'drill'>, context: OperationContext): Promise<DrillResult> {
  return withRequestStorage(request, context, async (storage) =>
    drillBackup(await openInstance(request, context.logger), storage, request, context),
  );
}
