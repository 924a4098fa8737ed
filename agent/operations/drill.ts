import os from 'node:os';
import { readManifest } from '../../core/backups.ts';
import {
  DRILL_FILE,
  type DrillDifference,
  type DrillRecord,
  readDrillRecord,
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
import {
  type BackupEvidence,
  EVIDENCE_METHOD,
  Identifier,
  type OnlineManifest,
  type PhysicalManifest,
} from '../../core/manifest.ts';
import type { DrillRequest } from '../../core/operations/drill.ts';
import type { BackupHandle, BackupStorage } from '../../core/storage/types.ts';
import { type DrillFindings, errorLogEnd, inspectRestoredCopy, noFindings } from '../drill/checks.ts';
import { findBackupTools } from '../engines/online/mariabackup.ts';
import { onlineRestoreEngine } from '../engines/online/restore.ts';
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
  /** Tables whose rows and checksum this drill computed on the prepared copy and recorded (online backups). */
  evidenceRecorded?: number;
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
function tableOfFile(
  manifest: PhysicalManifest | OnlineManifest,
  stored: string,
): { database?: string; table?: string } {
  // A part of an online backup's stream holds slices of many files: it names no table.
  if (manifest.engine !== 'physical') return {};
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
  manifest: PhysicalManifest | OnlineManifest,
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
  if (manifest.engine === 'logical') {
    throw new StepbackError(`backup ${request.dir}/${request.backup} is a logical snapshot`, {
      hint: 'drills restore physical and online backups',
    });
  }
  checkCompatible(daemon, manifest);
  // A missing or mismatched tool is this host's problem, not the backup's: refused before anything runs.
  if (manifest.engine === 'online' && manifest.format === 'xbstream')
    await findBackupTools(daemon.binaries.version);
  const earlier = manifest.evidence ? undefined : await earlierDrillEvidence(handle, logger);
  const evidence = manifest.evidence ?? earlier;
  const startedAt = new Date();
  let findings = noFindings();
  let taken: BackupEvidence | undefined;
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
    const params = {
      ...context,
      daemon,
      handle,
      lease,
      concurrency: request.concurrency,
      localMetadata: {},
      inspect: async () => {
        reachedPhase('drill:inspecting');
        taken = await inspectRestoredCopy(
          {
            ...context,
            daemon,
            evidence,
            // An online backup records none: the first drill takes it on the prepared copy.
            takeEvidence: manifest.engine === 'online' && evidence === undefined,
            errorLogFrom,
            checkTables: request.checkTables,
          },
          findings,
        );
      },
    };
    try {
      if (manifest.engine === 'online') await onlineRestoreEngine.executeRestore({ ...params, manifest });
      else await physicalRestoreEngine.executeRestore({ ...params, manifest });
    } catch (error) {
      // What the checks found before the failure stays in the record (CHECK TABLE naming a table).
      findings = backupFault(error, manifest, signal, findings);
    }
  });
  const finishedAt = new Date();
  const outcome = findings.differences.length + findings.problems.length === 0 ? 'passed' : 'failed';
  findings = recordable(findings);
  // Only a copy that passed every other check is worth comparing later drills with.
  const drillEvidence = earlier ?? (outcome === 'passed' ? recordableEvidence(taken, logger) : undefined);
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
    ...(drillEvidence ? { drillEvidence } : {}),
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
    ...(taken && drillEvidence === taken ? { evidenceRecorded: taken.tables.length } : {}),
    differences: record.differences,
    problems: record.problems,
    seconds: record.durationSeconds,
    record: `${request.dir}/${request.backup}/${DRILL_FILE}`,
  };
}

/**
 * The evidence an earlier drill took on the prepared copy of a backup that records none (an online
 * backup); undefined when there is none, or when the earlier DRILL.json does not read (then this
 * drill takes the evidence anew, and says so).
 */
async function earlierDrillEvidence(
  handle: BackupHandle,
  logger: OperationContext['logger'],
): Promise<BackupEvidence | undefined> {
  try {
    const evidence = (await readDrillRecord(handle))?.drillEvidence;
    if (evidence && evidence.method !== EVIDENCE_METHOD) {
      logger.warn(
        `the evidence an earlier drill took was computed by an older checksum (${evidence.method}): taking it anew`,
      );
      return undefined;
    }
    if (evidence)
      logger.info(`comparing with the evidence an earlier drill took (${evidence.tables.length} tables)`);
    return evidence;
  } catch (error) {
    if (!(error instanceof VerificationError)) throw error;
    logger.warn(`the earlier ${DRILL_FILE} does not read (${messageOf(error)}): taking the evidence anew`);
    return undefined;
  }
}

/** DRILL.json is read back with a size limit: evidence of more tables than fit is not recorded. */
const MAX_EVIDENCE_TABLES = 20_000;

function recordableEvidence(
  evidence: BackupEvidence | undefined,
  logger: OperationContext['logger'],
): BackupEvidence | undefined {
  if (!evidence || evidence.tables.length <= MAX_EVIDENCE_TABLES) return evidence;
  logger.warn(
    `the copy holds ${evidence.tables.length} tables, more than ${MAX_EVIDENCE_TABLES}: their evidence is not recorded, later drills only start and check it`,
  );
  return undefined;
}

/** `stepback drill`, and the Drill state machine's task. */
export function runDrill(request: RequestOf<'drill'>, context: OperationContext): Promise<DrillResult> {
  return withRequestStorage(request, context, async (storage) =>
    drillBackup(await openInstance(request, context.logger), storage, request, context),
  );
}
