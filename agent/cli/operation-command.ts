import type { Command } from 'commander';
import type { OperationName } from '../../core/agent-request.ts';
import { flagName } from '../../core/errors.ts';
import type { OperationResults } from '../operations/index.ts';

/** What commander gives an action: each flag's text, `true` for a switch, absent when not given. */
export type Flags = Record<string, unknown>;

/**
 * How one operation looks on the command line: the flags it declares, how their text becomes the
 * operation's request (the schema then validates it exactly as it validates a state machine's), the
 * flags that set a request field of another name, and how a result reads for people.
 */
export interface OperationCommand<K extends OperationName> {
  readonly operation: K;
  /** Adds the command and its flags to the program. */
  declare(program: Command): Command;
  /** The flags as the request's JSON: numbers as numbers, lists as arrays. */
  toRequest(flags: Flags): Record<string, unknown>;
  /** Request field paths (`replicateFrom.user`) set by a flag not named after them. */
  flagOfField?: Readonly<Record<string, string>>;
  render(result: OperationResults[K]): string;
}

/** The flag that sets a request field, for errors that name it. */
export function flagOf(command: OperationCommand<OperationName>, path: readonly string[]): string {
  const exact = command.flagOfField?.[path.join('.')];
  if (exact) return exact;
  const top = path[0];
  if (top === undefined) return 'options';
  return command.flagOfField?.[top] ?? flagName(top);
}

/**
 * A number flag's text as a number; text that is not a number is passed on as it is, so the schema
 * refuses it naming the flag and the value.
 */
export function numberFlag(value: unknown): unknown {
  return typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : value;
}

/** `a, b,c` → `['a', 'b', 'c']` */
export function listFlag(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  return value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

/** The flags every command that reads or writes backups takes, as request fields. */
export function storageFields(flags: Flags): Record<string, unknown> {
  return {
    storage: flags.storage,
    s3Endpoint: flags.s3Endpoint,
    s3PathStyle: flags.s3PathStyle,
    sse: flags.sse,
    sseKmsKeyId: flags.sseKmsKeyId,
  };
}

/** The flags every command that drives a mysqld takes, as request fields. */
export function instanceFields(flags: Flags): Record<string, unknown> {
  return { defaultsFile: flags.defaultsFile, mysqld: flags.mysqld, systemdService: flags.systemdService };
}
