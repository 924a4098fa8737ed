import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { StorageError } from '../errors.ts';
import { isSafeSegment } from '../paths.ts';
import {
  cellInfoText,
  checkName,
  parseCellInfo,
  parseRecord,
  parseShardRecord,
  type ShardRecord,
  ShardRecordSchema,
  SrvVSchemaSchema,
  type TopologyStore,
  VSchemaSchema,
  validateRecord,
} from './types.ts';

/**
 * The topology in a directory, laid out like Vitess's topo server:
 *
 *     cells/<cell>/CellInfo.json
 *     cells/<cell>/SrvVSchema.json
 *     keyspaces/<keyspace>/VSchema.json
 *     keyspaces/<keyspace>/shards/<shard>/Shard.json
 *
 * Each file is written under a temporary name and renamed, so a reader sees the old record or the new.
 */
export class FileTopologyStore implements TopologyStore {
  readonly root: string;

  constructor(root: string) {
    if (!path.isAbsolute(root)) throw new StorageError(`topology directory must be absolute, got ${root}`);
    this.root = path.resolve(root);
  }

  async listCells(): Promise<string[]> {
    const cells = await this.#subdirectories(path.join(this.root, 'cells'));
    const known: string[] = [];
    for (const cell of cells) {
      const text = await this.#read(this.#cellFile(cell, 'CellInfo.json'));
      if (text === undefined) continue;
      parseCellInfo(text, cell, this.#cellFile(cell, 'CellInfo.json'));
      known.push(cell);
    }
    return known;
  }

  async addCell(cell: string): Promise<void> {
    await this.#write(this.#cellFile(checkName('cell', cell), 'CellInfo.json'), cellInfoText(cell));
  }

  async listKeyspaces(): Promise<string[]> {
    return this.#subdirectories(path.join(this.root, 'keyspaces'));
  }

  async listShards(keyspace: string): Promise<ShardRecord[]> {
    const shards = await this.#subdirectories(
      path.join(this.root, 'keyspaces', checkName('keyspace', keyspace), 'shards'),
    );
    const records: ShardRecord[] = [];
    for (const shard of shards) {
      const record = await this.getShard(keyspace, shard);
      if (record) records.push(record);
    }
    return records;
  }

  async getShard(keyspace: string, shard: string): Promise<ShardRecord | undefined> {
    const file = this.#shardFile(keyspace, shard);
    const text = await this.#read(file);
    return text === undefined ? undefined : parseShardRecord(text, keyspace, shard, file);
  }

  async setShard(record: ShardRecord): Promise<void> {
    const valid = validateRecord(ShardRecordSchema, record, 'shard record');
    await this.#write(this.#shardFile(valid.keyspace, valid.shard), pretty(valid));
  }

  async getVSchema(keyspace: string): Promise<unknown | undefined> {
    const file = this.#keyspaceFile(keyspace, 'VSchema.json');
    const text = await this.#read(file);
    return text === undefined ? undefined : parseRecord(VSchemaSchema, text, file);
  }

  async setVSchema(keyspace: string, vschema: unknown): Promise<void> {
    const valid = validateRecord(VSchemaSchema, vschema, `vschema of ${keyspace}`);
    await this.#write(this.#keyspaceFile(keyspace, 'VSchema.json'), pretty(valid));
  }

  async getSrvVSchema(cell: string): Promise<unknown | undefined> {
    const file = this.#cellFile(checkName('cell', cell), 'SrvVSchema.json');
    const text = await this.#read(file);
    return text === undefined ? undefined : parseRecord(SrvVSchemaSchema, text, file);
  }

  async setSrvVSchema(cell: string, srvVSchema: unknown): Promise<void> {
    const valid = validateRecord(SrvVSchemaSchema, srvVSchema, `serving vschema of ${cell}`);
    await this.#write(this.#cellFile(checkName('cell', cell), 'SrvVSchema.json'), pretty(valid));
  }

  #cellFile(cell: string, name: string): string {
    return path.join(this.root, 'cells', cell, name);
  }

  #keyspaceFile(keyspace: string, name: string): string {
    return path.join(this.root, 'keyspaces', checkName('keyspace', keyspace), name);
  }

  #shardFile(keyspace: string, shard: string): string {
    return path.join(
      this.root,
      'keyspaces',
      checkName('keyspace', keyspace),
      'shards',
      checkName('shard', shard),
      'Shard.json',
    );
  }

  /** Directory names that are valid topology names; anything else in the tree is not ours. */
  async #subdirectories(dir: string): Promise<string[]> {
    try {
      const entries = await fs.readdir(dir, { withFileTypes: true });
      return entries
        .filter((entry) => entry.isDirectory() && isSafeSegment(entry.name))
        .map((entry) => entry.name)
        .sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new StorageError(`cannot list ${dir}: ${(error as Error).message}`, { cause: error });
    }
  }

  async #read(file: string): Promise<string | undefined> {
    try {
      return await fs.readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new StorageError(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
    }
  }

  async #write(file: string, text: string): Promise<void> {
    const temporary = path.join(path.dirname(file), `.tmp-${randomBytes(6).toString('hex')}`);
    try {
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(temporary, text);
      await fs.rename(temporary, file);
    } catch (error) {
      await fs.rm(temporary, { force: true });
      throw new StorageError(`cannot write ${file}: ${(error as Error).message}`, {
        cause: error,
        hint: 'check that the topology directory exists and is writable',
      });
    }
  }
}

function pretty(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
