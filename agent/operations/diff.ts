import { FieldError } from '../../core/errors.ts';
import { KeyRange } from '../../core/keyrange.ts';
import type { DiffResult, TableNotes } from '../diff/types.ts';
import { type ConnectionTarget, parseMysqlUri } from '../mysql/connection.ts';
import type { OperationContext, RequestOf } from './operation.ts';

/** A diff's counts and samples, with what the report for people says besides them. */
export interface DiffReport extends DiffResult {
  /** Rows only on the left were allowed. */
  subset: boolean;
  notes: TableNotes[];
}

/** A side's connection: the URI names host or socket, user and database; the password comes from a variable. */
function sideTarget(
  side: 'left' | 'right',
  uri: string,
  passwordEnv: string | undefined,
  context: OperationContext,
): ConnectionTarget & { database: string } {
  let password: string | undefined;
  if (passwordEnv !== undefined) {
    password = context.env.variable(passwordEnv);
    if (password === undefined) throw new FieldError([`${side}PasswordEnv`], `${passwordEnv} is not set`);
  }
  const target = parseMysqlUri(uri, password);
  if (!target.database) {
    throw new FieldError([side], `${uri} names no database`, {
      hint: 'add it as the path: mysql://user@host:3306/commerce',
    });
  }
  return { ...target, database: target.database };
}

/** `stepback diff`, and a state machine's diff task. */
export async function runDiff(request: RequestOf<'diff'>, context: OperationContext): Promise<DiffReport> {
  const left = sideTarget('left', request.left, request.leftPasswordEnv, context);
  const right = sideTarget('right', request.right, request.rightPasswordEnv, context);
  const { diffDatabases } = await import('../diff/engine.ts');
  const outcome = await diffDatabases({
    left,
    right,
    tables: request.tables,
    subset: request.subset,
    leftKeyRange:
      request.leftKeyRange === undefined || request.keyColumn === undefined
        ? undefined
        : { range: KeyRange.parse(request.leftKeyRange), column: request.keyColumn, type: request.keyType },
    concurrency: request.concurrency,
    chunkRows: request.chunkRows,
    checksums: request.checksums,
    logger: context.logger,
    onProgress: context.progress,
    signal: context.signal,
  });
  return { ...outcome.result, subset: outcome.subset, notes: outcome.notes };
}
