import { createHash } from 'node:crypto';
import {
  DeleteParametersCommand,
  GetParameterCommand,
  ParameterNotFound,
  PutParameterCommand,
  paginateGetParametersByPath,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { StepbackError, UsageError } from '../errors.ts';
import { type Logger, silentLogger } from '../log.ts';
import { isSafeSegment } from '../paths.ts';
import { mapConcurrent } from '../stream/concurrency.ts';
import {
  asciiJson,
  cellInfoText,
  checkName,
  parseCellInfo,
  parseRecord,
  parseShardRecord,
  type ShardRecord,
  ShardRecordSchema,
  SrvVSchemaSchema,
  TopologyError,
  type TopologyStore,
  VSchemaSchema,
  validateRecord,
} from './types.ts';

/** A standard-tier parameter holds 4 KB; stored text is ASCII, so characters are bytes. */
export const SSM_VALUE_LIMIT = 4096;
/** PutParameter is throttled at a few requests per second: write parts a few at a time. */
const partConcurrency = 3;
/** A value larger than a parameter is split: this header names its parts. */
const splitHeader = /^stepback-split v1 ([0-9a-f]{16}) ([1-9][0-9]{0,4}) ([0-9a-f]{64})$/;

/**
 * The topology in SSM Parameter Store under a prefix, one String parameter per record:
 *
 *     <prefix>/cells/<cell>/CellInfo
 *     <prefix>/cells/<cell>/SrvVSchema
 *     <prefix>/keyspaces/<keyspace>/VSchema
 *     <prefix>/keyspaces/<keyspace>/shards/<shard>/Shard
 *
 * Values over 4 KB are split (advanced parameters stop at 8 KB, and a serving vschema outgrows
 * that): the parts go to `<name>.split/<version>/<n>`, then `<name>` is set to a header naming the
 * version, the part count and the SHA-256 of the whole, then parts of older versions are deleted.
 * A reader checks the hash, so it sees the old value or the new one, never a mix.
 */
export class SsmTopologyStore implements TopologyStore {
  readonly prefix: string;
  readonly #client: SSMClient;
  readonly #ownsClient: boolean;
  readonly #logger: Logger;

  constructor(prefix: string, options: { client?: SSMClient; logger?: Logger } = {}) {
    this.prefix = checkPrefix(prefix);
    this.#ownsClient = options.client === undefined;
    // Adaptive retries pace requests when Parameter Store throttles (it allows few writes per second).
    this.#client = options.client ?? new SSMClient({ maxAttempts: 8, retryMode: 'adaptive' });
    this.#logger = options.logger ?? silentLogger;
  }

  close(): void {
    if (this.#ownsClient) this.#client.destroy();
  }

  async listCells(): Promise<string[]> {
    const values = await this.#listValues(`${this.prefix}/cells`);
    const cells: string[] = [];
    for (const [name, value] of values) {
      const match = /^\/cells\/([^/]+)\/CellInfo$/.exec(name.slice(this.prefix.length));
      if (!match || !isSafeSegment(match[1]!)) continue;
      parseCellInfo(await this.#resolve(name, value, values), match[1]!, this.#where(name));
      cells.push(match[1]!);
    }
    return cells.sort();
  }

  async addCell(cell: string): Promise<void> {
    await this.#put(this.#cellName(cell, 'CellInfo'), cellInfoText(cell));
  }

  async listKeyspaces(): Promise<string[]> {
    const values = await this.#listValues(`${this.prefix}/keyspaces`);
    const keyspaces = new Set<string>();
    for (const name of values.keys()) {
      const match = /^\/keyspaces\/([^/]+)\/(?:VSchema|shards\/[^/]+\/Shard)$/.exec(
        name.slice(this.prefix.length),
      );
      if (match && isSafeSegment(match[1]!)) keyspaces.add(match[1]!);
    }
    return [...keyspaces].sort();
  }

  async listShards(keyspace: string): Promise<ShardRecord[]> {
    const base = `${this.#keyspaceName(keyspace)}/shards`;
    const values = await this.#listValues(base);
    const records: ShardRecord[] = [];
    for (const [name, value] of values) {
      const match = /^\/([^/]+)\/Shard$/.exec(name.slice(base.length));
      if (!match || !isSafeSegment(match[1]!)) continue;
      const text = await this.#resolve(name, value, values);
      records.push(parseShardRecord(text, keyspace, match[1]!, this.#where(name)));
    }
    return records.sort((a, b) => (a.shard < b.shard ? -1 : a.shard > b.shard ? 1 : 0));
  }

  async getShard(keyspace: string, shard: string): Promise<ShardRecord | undefined> {
    const name = this.#shardName(keyspace, shard);
    const text = await this.#get(name);
    return text === undefined ? undefined : parseShardRecord(text, keyspace, shard, this.#where(name));
  }

  async setShard(record: ShardRecord): Promise<void> {
    const valid = validateRecord(ShardRecordSchema, record, 'shard record');
    await this.#put(this.#shardName(valid.keyspace, valid.shard), asciiJson(valid));
  }

  async getVSchema(keyspace: string): Promise<unknown | undefined> {
    const name = `${this.#keyspaceName(keyspace)}/VSchema`;
    const text = await this.#get(name);
    return text === undefined ? undefined : parseRecord(VSchemaSchema, text, this.#where(name));
  }

  async setVSchema(keyspace: string, vschema: unknown): Promise<void> {
    const valid = validateRecord(VSchemaSchema, vschema, `vschema of ${keyspace}`);
    await this.#put(`${this.#keyspaceName(keyspace)}/VSchema`, asciiJson(valid));
  }

  async getSrvVSchema(cell: string): Promise<unknown | undefined> {
    const name = this.#cellName(cell, 'SrvVSchema');
    const text = await this.#get(name);
    return text === undefined ? undefined : parseRecord(SrvVSchemaSchema, text, this.#where(name));
  }

  async setSrvVSchema(cell: string, srvVSchema: unknown): Promise<void> {
    const valid = validateRecord(SrvVSchemaSchema, srvVSchema, `serving vschema of ${cell}`);
    await this.#put(this.#cellName(cell, 'SrvVSchema'), asciiJson(valid));
  }

  #cellName(cell: string, record: string): string {
    return `${this.prefix}/cells/${checkName('cell', cell)}/${record}`;
  }

  #keyspaceName(keyspace: string): string {
    return `${this.prefix}/keyspaces/${checkName('keyspace', keyspace)}`;
  }

  #shardName(keyspace: string, shard: string): string {
    return `${this.#keyspaceName(keyspace)}/shards/${checkName('shard', shard)}/Shard`;
  }

  #where(name: string): string {
    return `SSM parameter ${name}`;
  }

  /** Every parameter under `path`, by name, following NextToken through every page. */
  async #listValues(path: string): Promise<Map<string, string>> {
    const values = new Map<string, string>();
    try {
      const pages = paginateGetParametersByPath(
        { client: this.#client, pageSize: 10 },
        { Path: path, Recursive: true, WithDecryption: false },
      );
      for await (const page of pages) {
        for (const parameter of page.Parameters ?? []) {
          if (parameter.Name !== undefined && parameter.Value !== undefined)
            values.set(parameter.Name, parameter.Value);
        }
      }
    } catch (error) {
      throw ssmError('list', path, error);
    }
    return values;
  }

  /** The value of one record, or undefined when it does not exist; split values are joined. */
  async #get(name: string, retried = false): Promise<string | undefined> {
    let value: string | undefined;
    try {
      const output = await this.#client.send(new GetParameterCommand({ Name: name, WithDecryption: false }));
      value = output.Parameter?.Value;
    } catch (error) {
      if (error instanceof ParameterNotFound) return undefined;
      throw ssmError('read', name, error);
    }
    return value === undefined ? undefined : this.#resolve(name, value, undefined, retried);
  }

  /**
   * The full text of a record whose stored value is `value`: itself, or the joined parts a split
   * header names (from `known` when a listing already fetched them). A writer replacing the value
   * meanwhile may have deleted the parts: then the header is read once more.
   */
  async #resolve(name: string, value: string, known?: Map<string, string>, retried = false): Promise<string> {
    const header = splitHeader.exec(value);
    if (!header) return value;
    const [, version, count, sha256] = header as unknown as [string, string, string, string];
    const base = `${name}.split/${version}`;
    const parts = known && hasParts(known, base, Number(count)) ? known : await this.#listValues(base);
    const texts: string[] = [];
    for (let index = 0; index < Number(count); index++) {
      const part = parts.get(`${base}/${partName(index)}`);
      if (part === undefined) break;
      texts.push(part);
    }
    const whole = texts.join('');
    if (texts.length === Number(count) && sha256Of(whole) === sha256) return whole;
    if (!retried) {
      const again = await this.#get(name, true);
      if (again === undefined) throw new TopologyError(`${this.#where(name)} disappeared while being read`);
      return again;
    }
    throw new TopologyError(
      `${this.#where(name)} is split into ${count} parts, but the parts under ${base} are missing or do not match its hash`,
      { hint: 'write the record again (stepback topo set-shard / set-vschema / vschema rebuild)' },
    );
  }

  async #put(name: string, text: string): Promise<void> {
    const stale = await this.#listValues(`${name}.split`);
    if (text.length <= SSM_VALUE_LIMIT) {
      await this.#putParameter(name, text);
    } else {
      const version = sha256Of(text).slice(0, 16);
      const parts: string[] = [];
      for (let at = 0; at < text.length; at += SSM_VALUE_LIMIT)
        parts.push(text.slice(at, at + SSM_VALUE_LIMIT));
      await mapConcurrent(parts, partConcurrency, (part, index) =>
        this.#putParameter(`${name}.split/${version}/${partName(index)}`, part),
      );
      await this.#putParameter(name, `stepback-split v1 ${version} ${parts.length} ${sha256Of(text)}`);
      for (const written of stale.keys())
        if (written.startsWith(`${name}.split/${version}/`)) stale.delete(written);
    }
    await this.#deleteQuietly([...stale.keys()]);
  }

  async #putParameter(name: string, value: string): Promise<void> {
    try {
      await this.#client.send(
        new PutParameterCommand({
          Name: name,
          Value: value,
          Type: 'String',
          Tier: 'Standard',
          DataType: 'text',
          Overwrite: true,
        }),
      );
    } catch (error) {
      throw ssmError('write', name, error);
    }
  }

  /** Parts of replaced values: a failure to delete them leaves garbage, not a wrong topology. */
  async #deleteQuietly(names: string[]): Promise<void> {
    for (let at = 0; at < names.length; at += 10) {
      const batch = names.slice(at, at + 10);
      try {
        await this.#client.send(new DeleteParametersCommand({ Names: batch }));
      } catch (error) {
        this.#logger.warn('could not delete the parts of a replaced topology value', {
          parameters: batch.join(','),
          error: (error as Error).message,
        });
      }
    }
  }
}

function hasParts(values: Map<string, string>, base: string, count: number): boolean {
  for (let index = 0; index < count; index++) if (!values.has(`${base}/${partName(index)}`)) return false;
  return true;
}

function partName(index: number): string {
  return String(index).padStart(5, '0');
}

function sha256Of(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * `/stepback/prod`: absolute, up to 5 safe segments (records add up to 7 more of SSM's 15 levels),
 * and not under the reserved `/aws` or `/ssm`.
 */
export function checkPrefix(prefix: string): string {
  const trimmed = prefix.replace(/\/+$/, '');
  const segments = trimmed.split('/').slice(1);
  if (
    !trimmed.startsWith('/') ||
    segments.length === 0 ||
    segments.length > 5 ||
    !segments.every(isSafeSegment) ||
    /^(aws|ssm)/i.test(segments[0]!)
  ) {
    throw new UsageError(`${JSON.stringify(prefix)} is not a usable SSM parameter prefix`, {
      hint: 'use ssm:/name or ssm:/name/env: 1 to 5 segments of letters, digits, "_", "." and "-", not starting with aws or ssm',
    });
  }
  return trimmed;
}

function ssmError(action: string, name: string, error: unknown): StepbackError {
  const code = (error as { name?: string }).name;
  const hint =
    code === 'AccessDeniedException'
      ? `allow ssm:GetParameter, ssm:GetParametersByPath, ssm:PutParameter and ssm:DeleteParameters on ${name}`
      : code === 'ThrottlingException'
        ? 'Parameter Store throttled the requests; run the command again'
        : /region is missing|credential/i.test((error as Error).message ?? '')
          ? 'set AWS_REGION and give the host AWS credentials (an instance role, or AWS_PROFILE)'
          : undefined;
  return new StepbackError(`cannot ${action} SSM parameter ${name}: ${(error as Error).message}`, {
    cause: error,
    hint,
  });
}
