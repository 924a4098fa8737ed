import { z } from 'zod';
import { KeyRangeText } from './manifest.ts';
import { BackupDir, BackupName } from './paths.ts';

/**
 * What a state machine asks the on-host agent to do (`stepback run --request-b64`). Built by the
 * Lambdas and state machines, decoded and validated by the agent: the one contract between them.
 * Every field becomes a command-line flag of the matching `stepback` command, never shell text.
 */

const Path = z.string().min(1).max(4096);
const Name = z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be letters, digits, "_", "." or "-"');
const EnvVar = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be an environment variable name');
const Count = z.number().int().min(1).max(1024);
const StorageUrl = z.string().regex(/^(file|s3):\/\/\S+$/, 'must be file:///abs/dir or s3://bucket/prefix');
const MysqlUri = z.string().regex(/^mysql:\/\/\S+$/, 'must be a mysql:// URI');

export type BackupRequest = z.infer<typeof BackupRequest>;
export const BackupRequest = z.strictObject({
  operation: z.literal('backup'),
  storage: StorageUrl,
  dir: BackupDir,
  defaultsFile: Path,
  engine: z.enum(['physical']).nullish(),
  compression: z.enum(['zstd', 'gzip', 'none']).nullish(),
  concurrency: Count.nullish(),
  name: BackupName.nullish(),
});

export const ReplicationSource = z.strictObject({
  host: z.string().regex(/^[A-Za-z0-9_.:-]{1,255}$/, 'must be a host name or address'),
  port: z.number().int().min(1).max(65535),
  user: z.string().min(1).max(80),
  /** The variable on the host that holds the replication password. */
  passwordEnv: EnvVar,
});

export type RestoreRequest = z.infer<typeof RestoreRequest>;
export const RestoreRequest = z.strictObject({
  operation: z.literal('restore'),
  storage: StorageUrl,
  dir: BackupDir,
  defaultsFile: Path,
  backup: BackupName.nullish(),
  deleteBeforeRestore: z.boolean().nullish(),
  localMetadata: z.record(Name, z.string().max(1024)).nullish(),
  replicateFrom: ReplicationSource.nullish(),
});

export type SnapshotRequest = z.infer<typeof SnapshotRequest>;
export const SnapshotRequest = z.strictObject({
  operation: z.literal('snapshot'),
  storage: StorageUrl,
  dir: BackupDir,
  defaultsFile: Path,
  database: Name,
  keyColumn: Name.nullish(),
  keyType: z.enum(['uint64', 'bytes']).nullish(),
  keyRanges: z.array(KeyRangeText).min(1).nullish(),
  shards: z.number().int().min(1).max(65536).nullish(),
  tables: z.array(Name).min(1).nullish(),
  excludeTables: z.array(Name).min(1).nullish(),
  maxFileSize: z
    .string()
    .regex(/^\d+(B|KiB|MiB|GiB)?$/, 'must be a size such as 64MiB')
    .nullish(),
  concurrency: Count.nullish(),
});

/** `KS/SOURCE/RANGE@NAME` as snapshot results list them. */
const SourceRef = z
  .string()
  .regex(/^[A-Za-z0-9_.\-/]+(@[A-Za-z0-9][A-Za-z0-9_.-]*)?$/, 'must be DIR or DIR@NAME');

export type MultirestoreRequest = z.infer<typeof MultirestoreRequest>;
export const MultirestoreRequest = z.strictObject({
  operation: z.literal('multirestore'),
  storage: StorageUrl,
  defaultsFile: Path,
  sources: z.array(SourceRef).min(1),
  database: Name,
  fetchConcurrency: Count.nullish(),
  insertConcurrency: Count.nullish(),
  tableConcurrency: Count.nullish(),
  writeBinlogs: z.boolean().nullish(),
  checkpoints: z.boolean().nullish(),
  dontStartReplication: z.boolean().nullish(),
});

export type DiffRequest = z.infer<typeof DiffRequest>;
export const DiffRequest = z.strictObject({
  operation: z.literal('diff'),
  left: MysqlUri,
  right: MysqlUri,
  tables: z.array(Name).min(1).nullish(),
  subset: z.boolean().nullish(),
  leftKeyRange: KeyRangeText.nullish(),
  keyColumn: Name.nullish(),
  keyType: z.enum(['uint64', 'bytes']).nullish(),
  leftPasswordEnv: EnvVar.nullish(),
  rightPasswordEnv: EnvVar.nullish(),
});

export const AgentRequest = z.discriminatedUnion('operation', [
  BackupRequest,
  RestoreRequest,
  SnapshotRequest,
  MultirestoreRequest,
  DiffRequest,
]);
export type AgentRequest = z.infer<typeof AgentRequest>;
export type AgentOperation = AgentRequest['operation'];

/**
 * SSM parameters are checked against these before the agent runs (the document's allowedPattern).
 * The SSM agent compiles them with Go's RE2, which refuses a repeat count over 1000: lengths are
 * bounded by the document's minChars/maxChars (SSM_PARAMETER_MAX_CHARS) instead.
 */
export const REQUEST_B64_PATTERN = '^[A-Za-z0-9+/]+={0,2}$';
export const TASK_TOKEN_PATTERN = '^[A-Za-z0-9+/=_.:-]+$';
/** Base64 of at most 10,000 characters (States.Base64Encode's limit) of up to 4 UTF-8 bytes; a task token. */
export const SSM_PARAMETER_MAX_CHARS = { request: 53_336, taskToken: 2048 } as const;

export function encodeAgentRequest(request: AgentRequest): string {
  return Buffer.from(JSON.stringify(request), 'utf8').toString('base64');
}
