import os from 'node:os';
import type { KeyRange } from '../../../../core/keyrange.ts';
import type {
  BackupEvidence,
  Compression,
  LogicalManifest,
  TableDataFile,
} from '../../../../core/manifest.ts';
import { keyspaceAndShard } from '../../../../core/paths.ts';
import type { Quiesced } from '../../../instance/state.ts';
import type { MysqlDaemon } from '../../../mysqld/daemon.ts';
import type { DumpedTable } from './dump.ts';
import type { KeyType } from './keyspace-id.ts';
import type { SourceSchema } from './schema.ts';

export interface RangeManifestInput {
  daemon: MysqlDaemon;
  serverVersion: string;
  serverUuid: string | undefined;
  name: string;
  dir: string;
  range: KeyRange;
  /** Index of `range` in every table's per-range results. */
  rangeIndex: number;
  database: string;
  schema: SourceSchema;
  /** Per table index of `schema.tables`, what the dump wrote. */
  dumped: ReadonlyMap<number, DumpedTable>;
  quiesced: Quiesced;
  compression: Compression;
  split: { keyColumn: string; keyType: KeyType } | undefined;
  started: Date;
  finished: Date;
  /** This range's per-table rows and checksums, when recorded. */
  evidence?: BackupEvidence | undefined;
}

/** The manifest of one range's backup: the whole schema, this range's files and row counts. */
export function rangeManifest(input: RangeManifestInput): LogicalManifest {
  const { schema, rangeIndex } = input;
  const files: TableDataFile[] = [];
  const rows = schema.tables.map((_, tableIndex) => {
    const dumped = input.dumped.get(tableIndex)?.ranges[rangeIndex];
    files.push(...(dumped?.files ?? []));
    return dumped?.rows ?? 0;
  });
  return {
    formatVersion: 1,
    engine: 'logical',
    name: input.name,
    dir: input.dir,
    ...keyspaceAndShard(input.dir),
    host: os.hostname(),
    startedAt: input.started.toISOString(),
    finishedAt: input.finished.toISOString(),
    durationSeconds: (input.finished.getTime() - input.started.getTime()) / 1000,
    flavor: input.daemon.flavor.name,
    serverVersion: input.serverVersion,
    serverId: input.daemon.config.serverId,
    ...(input.serverUuid ? { serverUuid: input.serverUuid } : {}),
    role: input.quiesced.role,
    position: input.quiesced.position,
    purged: input.quiesced.purged,
    compression: input.compression,
    bytes: {
      raw: files.reduce((sum, file) => sum + file.rawSize, 0),
      stored: files.reduce((sum, file) => sum + file.storedSize, 0),
    },
    database: input.database,
    keyRange: input.range.toString(),
    ...(input.split ? { keyColumn: input.split.keyColumn, keyType: input.split.keyType } : {}),
    tables: [...schema.tables.map((table, i) => ({ ...table, rows: rows[i]! })), ...schema.views],
    storedPrograms: schema.programs,
    charset: schema.charset,
    collation: schema.collation,
    files,
    ...(input.evidence ? { evidence: input.evidence } : {}),
  };
}
