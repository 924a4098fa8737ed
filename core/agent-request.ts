import type { z } from 'zod';
import { FieldError } from './errors.ts';
import { BackupRequest } from './operations/backup.ts';
import { BinlogArchiveRequest } from './operations/binlog-archive.ts';
import { CatchupRequest } from './operations/catchup.ts';
import { DiffRequest } from './operations/diff.ts';
import { DrillRequest } from './operations/drill.ts';
import { fieldErrorOf } from './operations/issues.ts';
import { MultirestoreRequest } from './operations/multirestore.ts';
import { ReplicationRequest } from './operations/replication.ts';
import { RestoreRequest } from './operations/restore.ts';
import { SnapshotRequest } from './operations/snapshot.ts';
import { WritesRequest } from './operations/writes.ts';
import { quoted } from './paths.ts';

/**
 * What a state machine asks the on-host agent to do (`stepback run`): `{ operation, ...fields }`,
 * where the fields are exactly that operation's request — the schema the CLI parses its flags into.
 * Built by the Lambdas and state machines, decoded and validated once by the agent.
 */
const requests = {
  backup: BackupRequest,
  restore: RestoreRequest,
  snapshot: SnapshotRequest,
  multirestore: MultirestoreRequest,
  diff: DiffRequest,
  drill: DrillRequest,
  binlogArchive: BinlogArchiveRequest,
  catchup: CatchupRequest,
  replication: ReplicationRequest,
  writes: WritesRequest,
} as const;

export type OperationName = keyof typeof requests;

/** A request once validated: typed, with its defaults filled in. */
export type RequestOf<K extends OperationName> = z.output<(typeof requests)[K]>;

/** Each operation's request schema (typed per operation, so generic code keeps the link). */
export const OPERATION_REQUESTS: { readonly [K in OperationName]: z.ZodType<RequestOf<K>> } = requests;
export const OPERATION_NAMES = Object.keys(requests) as OperationName[];

/** A request as JSON carries it (what the Lambdas build): defaults may be left out, absent may be null. */
export type AgentRequestFor<K extends OperationName> = { operation: K } & z.input<(typeof requests)[K]>;
export type AgentRequest = { [K in OperationName]: AgentRequestFor<K> }[OperationName];

/** A request once validated: the operation's name and its typed, defaulted fields. */
export type ParsedRequest = { [K in OperationName]: { operation: K; request: RequestOf<K> } }[OperationName];

/**
 * How a request names a field in errors: `request.replicateFrom.port`; a key that is not a plain
 * name (" ", a huge one) is quoted and cut, so a hostile request can neither hide the field nor
 * make a huge error.
 */
export const requestFieldName = (path: readonly string[]) =>
  ['request', ...path.map((key) => (/^[A-Za-z_$][\w$-]{0,63}$|^\d+$/.test(key) ? key : quoted(key)))].join(
    '.',
  );

function isOperationName(value: unknown): value is OperationName {
  return typeof value === 'string' && Object.hasOwn(OPERATION_REQUESTS, value);
}

/** Validates a decoded request; a UsageError names the field by its path (`request.replicateFrom.port`). */
export function parseAgentRequest(json: unknown): ParsedRequest {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new FieldError([], 'must be a JSON object').named(requestFieldName);
  }
  const { operation, ...fields } = json as Record<string, unknown>;
  if (!isOperationName(operation)) {
    throw new FieldError(['operation'], `must be one of ${OPERATION_NAMES.join(', ')}`).named(
      requestFieldName,
    );
  }
  const schema: z.ZodType = requests[operation];
  const parsed = schema.safeParse(fields);
  if (!parsed.success) {
    throw fieldErrorOf(
      parsed.error,
      fields,
      `the fields of a ${operation} request are the flags of stepback ${operation}, in camelCase (see its --help)`,
    ).named(requestFieldName);
  }
  return { operation, request: parsed.data } as ParsedRequest;
}

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
