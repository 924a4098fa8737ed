import { AgentRequest, REQUEST_B64_PATTERN } from '../../core/agent-request.ts';
import { UsageError } from '../../core/errors.ts';
import { quoted } from '../../core/paths.ts';

/** Decodes `--request-b64` and validates it; UsageError naming the field otherwise. */
export function decodeRequest(base64: string): AgentRequest {
  if (!new RegExp(REQUEST_B64_PATTERN).test(base64)) {
    throw new UsageError('--request-b64 is not base64 text', {
      hint: 'the request is the JSON of the operation, base64-encoded (States.Base64Encode)',
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(base64, 'base64').toString('utf8'));
  } catch {
    throw new UsageError('--request-b64 does not decode to JSON');
  }
  const parsed = AgentRequest.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    // A key that is not a plain name (" ", a huge one) is quoted and cut, so the field stays visible.
    const keys = issue?.path.map((k) =>
      typeof k === 'number' || /^[A-Za-z_$][\w$-]{0,63}$/.test(String(k)) ? String(k) : quoted(String(k)),
    );
    const field = keys?.length ? `request.${keys.join('.')}` : 'request';
    // zod quotes an unknown key whole: cut, so a hostile request cannot make a huge error.
    const message = (issue?.message ?? 'invalid').slice(0, 300);
    throw new UsageError(`${field}: ${message}`, {
      hint: 'operation is one of backup, restore, snapshot, multirestore, diff, with that command’s fields',
    });
  }
  return parsed.data;
}

type Value = string | number | boolean | string[] | Record<string, string> | null | undefined;

/** `--flag=value` (so a value such as `-80` is never read as a flag), `--flag` for true, nothing for absent or false. */
function flags(entries: [string, Value][]): string[] {
  const argv: string[] = [];
  for (const [flag, value] of entries) {
    if (value === undefined || value === null || value === false) continue;
    if (value === true) argv.push(flag);
    else if (Array.isArray(value)) argv.push(`${flag}=${value.join(',')}`);
    else if (typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) argv.push(`${flag}=${key}=${item}`);
    } else argv.push(`${flag}=${value}`);
  }
  return argv;
}

/** The `stepback` command line that carries out a request (without the global --json). */
export function requestArgv(request: AgentRequest): string[] {
  switch (request.operation) {
    case 'backup':
      return [
        'backup',
        ...flags([
          ['--defaults-file', request.defaultsFile],
          ['--storage', request.storage],
          ['--dir', request.dir],
          ['--engine', request.engine],
          ['--concurrency', request.concurrency],
          ['--compression', request.compression],
          ['--name', request.name],
        ]),
      ];
    case 'restore':
      return [
        'restore',
        ...flags([
          ['--defaults-file', request.defaultsFile],
          ['--storage', request.storage],
          ['--dir', request.dir],
          ['--backup', request.backup],
          ['--delete-before-restore', request.deleteBeforeRestore],
          ['--local-metadata', request.localMetadata],
          [
            '--replicate-from',
            request.replicateFrom ? `${request.replicateFrom.host}:${request.replicateFrom.port}` : undefined,
          ],
          ['--replication-user', request.replicateFrom?.user],
          ['--replication-password-env', request.replicateFrom?.passwordEnv],
        ]),
      ];
    case 'snapshot':
      return [
        'snapshot',
        ...flags([
          ['--defaults-file', request.defaultsFile],
          ['--storage', request.storage],
          ['--dir', request.dir],
          ['--database', request.database],
          ['--key-column', request.keyColumn],
          ['--key-type', request.keyType],
          ['--key-ranges', request.keyRanges],
          ['--shards', request.shards],
          ['--tables', request.tables],
          ['--exclude-tables', request.excludeTables],
          ['--max-file-size', request.maxFileSize],
          ['--concurrency', request.concurrency],
        ]),
      ];
    case 'multirestore':
      return [
        'multirestore',
        ...flags([
          ['--defaults-file', request.defaultsFile],
          ['--storage', request.storage],
          ['--sources', request.sources],
          ['--database', request.database],
          ['--fetch-concurrency', request.fetchConcurrency],
          ['--insert-concurrency', request.insertConcurrency],
          ['--table-concurrency', request.tableConcurrency],
          ['--write-binlogs', request.writeBinlogs],
          ['--checkpoints', request.checkpoints],
          ['--dont-start-replication', request.dontStartReplication],
        ]),
      ];
    case 'diff':
      return [
        'diff',
        ...flags([
          ['--left', request.left],
          ['--right', request.right],
          ['--tables', request.tables],
          ['--subset', request.subset],
          ['--left-key-range', request.leftKeyRange],
          ['--key-column', request.keyColumn],
          ['--key-type', request.keyType],
          ['--left-password-env', request.leftPasswordEnv],
          ['--right-password-env', request.rightPasswordEnv],
        ]),
      ];
  }
}
