import type { Logger } from '../../core/log.ts';
import type {
  BackupEvidence,
  BackupTool,
  Compression,
  OnlineManifest,
  OnlinePart,
  PhysicalFile,
  PhysicalManifest,
} from '../../core/manifest.ts';
import type { BackupHandle } from '../../core/storage/types.ts';
import type { InstanceLease } from '../instance/lease.ts';
import type { InstanceState } from '../instance/state.ts';
import type { MysqlDaemon } from '../mysqld/daemon.ts';
import type { Progress } from '../report/reporter.ts';

/**
 * How a backup is made and restored, apart from where its bytes go (BackupStorage) and how mysqld
 * is driven (MysqlDaemon). The operations around an engine hold the instance, write the manifest
 * and put the instance back; the engine does what its method needs in between.
 */

export interface EngineContext {
  logger: Logger;
  progress: (update: Progress) => void;
  /** Aborted when the operator interrupts: stop, and let the caller clean up. */
  signal: AbortSignal;
}

export interface BackupParams extends EngineContext {
  daemon: MysqlDaemon;
  handle: BackupHandle;
  /** The state found and recorded; the engine may change it, the caller puts it back. */
  original: InstanceState;
  compression: Compression;
  /** Files copied at once. */
  concurrency: number;
  /** innodb_fast_shutdown=0 before a cold copy (see README): for restores onto another major version. */
  slowShutdown: boolean;
  /** Record per-table rows and checksums at the backup's position (what a drill compares with). */
  evidence: boolean;
  /** Online engine: raw bytes of the tool's stream per stored part. */
  partSize: number;
  /** Online engine on a replica: never pause its SQL thread (see BackupRequest). */
  keepReplicaApplying: boolean;
  /** The server's VERSION(), for the tools that must match it. */
  serverVersion: string;
}

/** What a backup stored, as its manifest records it: per engine. */
export type EngineContents =
  | { engine: 'physical'; files: PhysicalFile[] }
  | { engine: 'online'; tool: BackupTool; format: 'xbstream' | 'tar'; partSize: number; files: OnlinePart[] };

/** What an engine made: the manifest fields that depend on how the copy was taken. */
export interface EngineBackup {
  role: 'primary' | 'replica';
  /** The GTID set the copied data contains. */
  position: string;
  purged: string;
  contents: EngineContents;
  bytes: { raw: number; stored: number };
  copySeconds: number;
  evidence?: BackupEvidence | undefined;
}

export interface BackupEngine {
  readonly name: EngineContents['engine'];
  executeBackup(params: BackupParams): Promise<EngineBackup>;
}

export interface RestoreParams<
  M extends PhysicalManifest | OnlineManifest = PhysicalManifest | OnlineManifest,
> extends EngineContext {
  daemon: MysqlDaemon;
  handle: BackupHandle;
  manifest: M;
  /** Held by the caller; the engine records its progress in it for crash recovery. */
  lease: InstanceLease;
  concurrency: number;
  /** Key/values written to the restored instance's local metadata table. */
  localMetadata: Readonly<Record<string, string>>;
  /**
   * A drill: once the restored copy runs (networking off, replication off), this looks at it, and
   * then the instance's own files are put back instead of the restore being committed.
   */
  inspect?: (() => Promise<void>) | undefined;
}

export interface EngineRestore {
  files: number;
  bytes: { raw: number; stored: number };
  downloadSeconds: number;
  /** From stopping the old instance to the restored one running with its position set. */
  swapSeconds: number;
}

export interface RestoreEngine<M extends PhysicalManifest | OnlineManifest> {
  readonly name: M['engine'];
  /**
   * Replaces the instance's data with the backup's and leaves it running normally at the backup's
   * position. On failure the instance's own files are back in place (the caller restarts it).
   */
  executeRestore(params: RestoreParams<M>): Promise<EngineRestore>;
}
