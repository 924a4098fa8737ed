import type { Logger } from './log.ts';

/** Exit codes the CLI maps named outcomes to; scripts and state machines branch on them. */
export const ExitCode = {
  failure: 1,
  usage: 2,
  noBackup: 3,
  existingData: 4,
  verificationFailed: 5,
  instanceBusy: 6,
} as const;

/**
 * An option named inside a hint. The same error reaches an operator at a terminal and a state
 * machine: the first reads `--delete-before-restore`, the second `deleteBeforeRestore: true`.
 */
export interface OptionRef {
  option: string;
  /** A switch to turn on (`--force` / `force: true`) rather than an option that takes a value. */
  set?: boolean;
}
export type HintParts = readonly (string | OptionRef)[];

/** `hint\`pass ${switchOption('force')} to replace them\`` */
export function hint(strings: TemplateStringsArray, ...options: OptionRef[]): HintParts {
  return strings.flatMap((text, index) => (index < options.length ? [text, options[index]!] : [text]));
}
export const option = (name: string): OptionRef => ({ option: name });
export const switchOption = (name: string): OptionRef => ({ option: name, set: true });

/** `deleteBeforeRestore` → `--delete-before-restore` */
export function flagName(field: PropertyKey): string {
  return `--${String(field).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

export type HintStyle = 'flags' | 'fields';

export function renderHint(parts: HintParts, style: HintStyle): string {
  return parts
    .map((part) => {
      if (typeof part === 'string') return part;
      if (style === 'flags') return flagName(part.option);
      return part.set ? `${part.option}: true` : part.option;
    })
    .join('');
}

export interface StepbackErrorOptions {
  cause?: unknown;
  /** What the operator should do next, shown under the message. */
  hint?: string | HintParts;
  /** For a bad option or request field: its path in the request (`['replicateFrom', 'port']`). */
  fieldPath?: readonly string[];
}

/**
 * The one base error. `code` is stable (scripts, Step Functions Catch and SendTaskFailure use it);
 * the message is for people.
 */
export class StepbackError extends Error {
  readonly code: string = 'STEPBACK_ERROR';
  readonly exitCode: number = ExitCode.failure;
  readonly hintParts: HintParts | undefined;
  readonly fieldPath: readonly string[] | undefined;

  constructor(message: string, options: StepbackErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hintParts = typeof options.hint === 'string' ? [options.hint] : options.hint;
    this.fieldPath = options.fieldPath;
  }

  /** The hint as the command line spells options. */
  get hint(): string | undefined {
    return this.hintFor('flags');
  }

  hintFor(style: HintStyle): string | undefined {
    return this.hintParts ? renderHint(this.hintParts, style) : undefined;
  }
}

/** A bad flag, argument or request field. */
export class UsageError extends StepbackError {
  override readonly code: string = 'USAGE';
  override readonly exitCode = ExitCode.usage;
}

/**
 * A bad value of one request field, named by its path. Each edge names the field its own way — a
 * flag on the command line, `request.x.y` for a state machine — with `named`.
 */
export class FieldError extends UsageError {
  readonly path: readonly string[];
  readonly detail: string;
  readonly #options: StepbackErrorOptions;

  constructor(path: readonly string[], detail: string, options: StepbackErrorOptions = {}, name?: string) {
    super(`${name ?? (path.join('.') || 'request')}: ${detail}`, { ...options, fieldPath: path });
    this.path = path;
    this.detail = detail;
    this.#options = options;
  }

  /** The same error, the field named as `nameOf` spells it. */
  named(nameOf: (path: readonly string[]) => string): FieldError {
    return new FieldError(this.path, this.detail, this.#options, nameOf(this.path));
  }
}

/** No complete backup matched what was asked for. */
export class NoBackupError extends StepbackError {
  override readonly code = 'NO_BACKUP';
  override readonly exitCode = ExitCode.noBackup;
  readonly dir: string;

  constructor(dir: string, message?: string, options?: StepbackErrorOptions) {
    super(message ?? `no complete backup in ${dir}`, options);
    this.dir = dir;
  }
}

/** A point in time or GTID that no backup and the binlog archive can reach without a gap. */
export class PointNotCoveredError extends StepbackError {
  override readonly code = 'POINT_NOT_COVERED';
  override readonly exitCode = ExitCode.noBackup;
}

/** The target already holds data and the operator did not say to replace it. */
export class ExistingDataError extends StepbackError {
  override readonly code = 'EXISTING_DATA';
  override readonly exitCode = ExitCode.existingData;
}

/** Stored bytes, a manifest or a copy did not check out. */
export class VerificationError extends StepbackError {
  override readonly code: string = 'VERIFICATION_FAILED';
  override readonly exitCode = ExitCode.verificationFailed;
}

/** A stored file whose hash or size differs from what its manifest recorded. */
export class HashMismatchError extends VerificationError {
  override readonly code = 'HASH_MISMATCH';
  readonly file: string;
  readonly expected: string;
  readonly actual: string;

  constructor(file: string, expected: string, actual: string, options?: StepbackErrorOptions) {
    super(`file ${file} is corrupt: expected ${expected}, got ${actual}`, options);
    this.file = file;
    this.expected = expected;
    this.actual = actual;
  }
}

/** A manifest that is missing, not JSON, or fails the schema (including paths that escape). */
export class ManifestError extends VerificationError {
  override readonly code = 'INVALID_MANIFEST';
  readonly backup: string | undefined;

  constructor(message: string, backup?: string, options?: StepbackErrorOptions) {
    super(backup ? `backup ${backup}: ${message}` : message, options);
    this.backup = backup;
  }
}

/** A serving primary was named where a replica is expected, and not allowed explicitly. */
export class PrimaryRefusedError extends StepbackError {
  override readonly code = 'PRIMARY_REFUSED';
  override readonly exitCode = ExitCode.usage;
}

/** A drill was asked of a host the topology lists as serving a shard. */
export class ServingHostError extends StepbackError {
  override readonly code = 'SERVING_HOST';
  override readonly exitCode = ExitCode.usage;
}

/** A path in backup storage that is a symbolic link: it could lead outside the storage, so it is never followed. */
export class SymlinkInStorageError extends VerificationError {
  override readonly code = 'SYMLINK_IN_STORAGE';
  readonly path: string;

  constructor(path: string, options?: StepbackErrorOptions) {
    super(`${path} in backup storage is a symbolic link; refusing to follow it`, {
      hint: 'backup storage holds only directories and files: replace the link by what it points to, if that is trusted',
      ...options,
    });
    this.path = path;
  }
}

/** Another stepback operation holds this instance. */
export class InstanceBusyError extends StepbackError {
  override readonly code = 'INSTANCE_BUSY';
  override readonly exitCode = ExitCode.instanceBusy;
}

/** Backup storage could not be read or written. */
export class StorageError extends StepbackError {
  override readonly code: string = 'STORAGE';
}

/** A file that should exist in a backup does not. */
export class MissingFileError extends StorageError {
  override readonly code = 'MISSING_FILE';
  readonly file: string;

  constructor(file: string, where: string, options?: StepbackErrorOptions) {
    super(`file ${file} does not exist in ${where}`, options);
    this.file = file;
  }
}

/** The exit code for any thrown value: named outcomes keep theirs, anything else is 1. */
export function exitCodeOf(error: unknown): number {
  return error instanceof StepbackError ? error.exitCode : ExitCode.failure;
}

/** The stable code for any thrown value. */
export function errorCodeOf(error: unknown): string {
  return error instanceof StepbackError ? error.code : 'INTERNAL';
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Keeps the first error of an operation and logs a later one (a cleanup that also failed), so the
 * real failure is never hidden by its cleanup. Returns the error to propagate, or undefined.
 */
export function keepFirstError(logger: Logger, first: unknown, later: unknown): unknown {
  if (later === undefined) return first;
  if (first === undefined) return later;
  logger.error('a cleanup step failed too (the first error is reported)', { error: messageOf(later) });
  return first;
}

/**
 * Runs `work`, then `cleanup` whatever happened. A cleanup failure is thrown only when the work
 * succeeded; otherwise it is logged and the work's error wins.
 */
export async function withCleanup<T>(
  logger: Logger,
  work: () => Promise<T>,
  cleanup: (failed: boolean) => Promise<void>,
): Promise<T> {
  let result: T;
  try {
    result = await work();
  } catch (error) {
    try {
      await cleanup(true);
    } catch (cleanupError) {
      keepFirstError(logger, error, cleanupError);
    }
    throw error;
  }
  await cleanup(false);
  return result;
}
