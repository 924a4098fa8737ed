import { z } from 'zod';
import { ManifestError } from './errors.ts';
import { FlavorName, GtidSetText, isValidGtidSet } from './gtid.ts';
import { BackupDir, BackupName, quoted, RelativePath, StoredFileName } from './paths.ts';

/**
 * The MANIFEST: the commit marker of a backup (written last) and untrusted input when read back.
 * Every read goes through `parseManifest`; nothing in it is used as a path, an identifier or SQL
 * without passing this schema.
 */

export const MANIFEST_FILE = 'MANIFEST';
export const MANIFEST_FORMAT_VERSION = 1;

export const Compression = z.enum(['zstd', 'gzip', 'none']);
export type Compression = z.infer<typeof Compression>;

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');
const ByteCount = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const Timestamp = z.iso.datetime({ offset: true });

/** The directories a physical backup restores into, each configured in my.cnf. */
export const FileBase = z.enum(['data', 'innodb-data', 'innodb-log', 'innodb-undo']);
export type FileBase = z.infer<typeof FileBase>;

/** A MySQL identifier (database, table, column): 1–64 characters, no NUL. */
export const Identifier = z
  .string()
  .min(1)
  .max(64)
  .refine((value) => !value.includes('\0'), { message: 'contains a NUL byte' });

/** Vitess key range notation: hex start, `-`, hex end; either side may be empty (`-80`, `80-`, `-`). */
export const KeyRangeText = z
  .string()
  .max(130)
  .regex(/^([0-9a-fA-F]{2}){0,32}-([0-9a-fA-F]{2}){0,32}$/, 'must be a key range like "-80", "40-80" or "-"');

const StoredBytes = {
  /** Object name inside the backup. */
  name: StoredFileName,
  rawSize: ByteCount,
  storedSize: ByteCount,
  /** SHA-256 of the stored (compressed) bytes. */
  sha256: Sha256,
};

export const PhysicalFile = z.object({
  ...StoredBytes,
  /** Which configured directory the file goes back into. */
  base: FileBase,
  /** Path relative to `base`; never absolute, never `..`. */
  path: RelativePath,
});
export type PhysicalFile = z.infer<typeof PhysicalFile>;

export const TableDataFile = z.object({
  ...StoredBytes,
  table: Identifier,
  /** Order of this chunk within its table, from 0. */
  part: z.number().int().nonnegative(),
  rows: ByteCount,
});
export type TableDataFile = z.infer<typeof TableDataFile>;

export const ColumnDefinition = z.object({
  name: Identifier,
  type: z.string().min(1).max(4096),
  generated: z.boolean(),
});
export type ColumnDefinition = z.infer<typeof ColumnDefinition>;

/** CREATE statements are checked for shape here; the loader still executes only one statement each. */
const CreateTableStatement = z
  .string()
  .max(1 << 20)
  .regex(/^CREATE TABLE `/, 'must be a CREATE TABLE statement');
const CreateViewStatement = z
  .string()
  .max(1 << 20)
  .regex(
    /^CREATE (ALGORITHM=\w+ )?(DEFINER=\S+ )?(SQL SECURITY \w+ )?VIEW `/,
    'must be a CREATE VIEW statement',
  );

/** A character set or collation name (`utf8mb4`, `latin1_swedish_ci`): written into statements. */
export const CharsetName = z
  .string()
  .max(64)
  .regex(/^[A-Za-z0-9_]+$/, 'must be a character set or collation name');

/**
 * A trigger, stored procedure or function, or event, as SHOW CREATE prints it, with the session
 * settings its body was parsed under (and must be parsed under again).
 */
export const StoredProgramDefinition = z.object({
  kind: z.enum(['procedure', 'function', 'trigger', 'event']),
  name: Identifier,
  /** A trigger's table. */
  table: Identifier.optional(),
  create: z
    .string()
    .max(1 << 20)
    .regex(/^CREATE /, 'must be a CREATE statement'),
  sqlMode: z
    .string()
    .max(1024)
    .regex(/^[A-Z0-9_,]*$/, 'must be a list of sql_mode words'),
  characterSetClient: CharsetName,
  collationConnection: CharsetName,
  /** An event's time zone, which its schedule is read in. */
  timeZone: z
    .string()
    .max(64)
    .regex(/^(SYSTEM|[+-]\d{1,2}:\d{2}|[A-Za-z][A-Za-z0-9_/+-]*)$/, 'must be a time zone')
    .optional(),
});
export type StoredProgramDefinition = z.infer<typeof StoredProgramDefinition>;

export const TableDefinition = z.object({
  name: Identifier,
  type: z.literal('table'),
  create: CreateTableStatement,
  columns: z.array(ColumnDefinition).min(1),
  primaryKey: z.array(Identifier),
  rows: ByteCount,
});
export type TableDefinition = z.infer<typeof TableDefinition>;

export const ViewDefinition = z.object({
  name: Identifier,
  type: z.literal('view'),
  create: CreateViewStatement,
});
export type ViewDefinition = z.infer<typeof ViewDefinition>;

/**
 * One table's evidence: its rows and a checksum taken while the data was at the backup's position.
 * The checksum is the diff's chunk checksum over the whole table (or key range): the exact sum of the
 * first 64 bits of each row's SHA-256 of the diff's row encoding, so the code that compares two
 * servers also proves a restored copy.
 */
export const TableEvidence = z.object({
  database: Identifier,
  table: Identifier,
  rows: ByteCount,
  checksum: z.string().regex(/^\d{1,40}$/, 'must be a decimal number'),
});
export type TableEvidence = z.infer<typeof TableEvidence>;

/**
 * What a drill compares a restored copy with, recorded apart from the files so that every engine
 * (cold copy, logical snapshot, online copy) can add it in its own way, and a backup without it
 * (turned off, or older) still reads.
 */
/**
 * How the evidence's checksums were computed: the diff's chunk checksum over the whole table with
 * the row encoding of the day. `row-sha256-sum` is the first encoding, which no current drill can
 * recompute: such evidence is read, and not compared.
 */
export const EVIDENCE_METHOD = 'row-sha256-sum-2';

export const BackupEvidence = z.object({
  method: z.enum(['row-sha256-sum', EVIDENCE_METHOD]),
  /** Seconds spent computing it: the cost of the evidence, paid with writes stopped. */
  seconds: z.number().nonnegative(),
  tables: z.array(TableEvidence),
});
export type BackupEvidence = z.infer<typeof BackupEvidence>;

const Common = {
  formatVersion: z.literal(MANIFEST_FORMAT_VERSION),
  name: BackupName,
  dir: BackupDir,
  keyspace: z.string().max(128),
  shard: z.string().max(128),
  host: z.string().max(255),
  startedAt: Timestamp,
  finishedAt: Timestamp,
  durationSeconds: z.number().nonnegative(),
  flavor: FlavorName,
  serverVersion: z.string().max(128),
  serverId: z.number().int().nonnegative(),
  /** MySQL's server_uuid; MariaDB has none. */
  serverUuid: z.string().max(64).optional(),
  /** Whether the source was a replica (its position is what it had executed) or a primary. */
  role: z.enum(['primary', 'replica']),
  /** The GTID set the data contains. */
  position: GtidSetText,
  /** GTIDs purged from the source's binary logs at backup time. */
  purged: GtidSetText,
  compression: Compression,
  bytes: z.object({ raw: ByteCount, stored: ByteCount }),
  /** Per-table rows and checksums for drills; absent when turned off or made by an older release. */
  evidence: BackupEvidence.optional(),
};

export const PhysicalManifest = z.object({
  ...Common,
  engine: z.literal('physical'),
  files: z.array(PhysicalFile),
});
export type PhysicalManifest = z.infer<typeof PhysicalManifest>;

/**
 * One part of an online backup's stream: the tool's output is cut every `partSize` bytes and each
 * slice compressed and stored on its own, so each part is verified and decompressed by itself.
 */
export const OnlinePart = z.object({
  ...StoredBytes,
  /** Order in the stream, from 0. */
  part: z.number().int().nonnegative(),
});
export type OnlinePart = z.infer<typeof OnlinePart>;

/** The tool that made an online backup, as it reported itself. */
export const BackupTool = z.object({
  /** mariabackup (MariaDB), or mysql-clone: MySQL's clone plugin, shipped with the server. */
  name: z.enum(['mariabackup', 'mysql-clone']),
  /** e.g. 10.11.19-MariaDB: a mariabackup backup is prepared by the same release. */
  version: z.string().min(1).max(128),
});
export type BackupTool = z.infer<typeof BackupTool>;

/** A hot copy taken by the server's backup tool while it kept serving; prepared on restore. */
export const OnlineManifest = z.object({
  ...Common,
  engine: z.literal('online'),
  tool: BackupTool,
  /** What the parts join into: mariabackup's xbstream, or a tar archive of a clone. */
  format: z.enum(['xbstream', 'tar']),
  /** Raw bytes of the stream per part (the last one may hold fewer). */
  partSize: ByteCount.min(1),
  files: z.array(OnlinePart).min(1),
});
export type OnlineManifest = z.infer<typeof OnlineManifest>;

export const LogicalManifest = z.object({
  ...Common,
  engine: z.literal('logical'),
  database: Identifier,
  keyRange: KeyRangeText,
  keyColumn: Identifier.optional(),
  keyType: z.enum(['uint64', 'bytes']).optional(),
  tables: z.array(z.discriminatedUnion('type', [TableDefinition, ViewDefinition])),
  /** Triggers, routines and events; absent in snapshots of older releases, which carried none. */
  storedPrograms: z.array(StoredProgramDefinition).optional(),
  /** The database's default character set and collation; absent in snapshots of older releases. */
  charset: CharsetName.optional(),
  collation: CharsetName.optional(),
  files: z.array(TableDataFile),
});
export type LogicalManifest = z.infer<typeof LogicalManifest>;

export const BackupManifest = z
  .discriminatedUnion('engine', [PhysicalManifest, OnlineManifest, LogicalManifest])
  .superRefine((manifest, ctx) => {
    for (const field of ['position', 'purged'] as const) {
      if (!isValidGtidSet(manifest.flavor, manifest[field])) {
        ctx.addIssue({ code: 'custom', path: [field], message: `is not a ${manifest.flavor} GTID set` });
      }
    }
    const names = new Set<string>();
    const destinations = new Set<string>();
    manifest.files.forEach((file, index) => {
      // DRILL.json is written beside a complete backup: no file of the backup may take its name.
      if (file.name === MANIFEST_FILE || file.name === 'DRILL.json' || names.has(file.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['files', index, 'name'],
          message: `duplicate name ${quoted(file.name)}`,
        });
      }
      names.add(file.name);
      if ('base' in file) {
        const destination = `${file.base}:${file.path}`;
        if (destinations.has(destination)) {
          ctx.addIssue({
            code: 'custom',
            path: ['files', index, 'path'],
            message: `duplicate path ${quoted(file.path)}`,
          });
        }
        destinations.add(destination);
      }
    });
    if (manifest.engine === 'online') {
      manifest.files.forEach((file, index) => {
        // The parts join in this order into one stream: a gap or a swap would corrupt it.
        if (file.part !== index) {
          ctx.addIssue({
            code: 'custom',
            path: ['files', index, 'part'],
            message: `part ${file.part} is listed at position ${index}`,
          });
        }
        if (file.rawSize > manifest.partSize) {
          ctx.addIssue({
            code: 'custom',
            path: ['files', index, 'rawSize'],
            message: `holds ${file.rawSize} bytes, more than the part size ${manifest.partSize}`,
          });
        }
      });
    }
    if (manifest.engine === 'logical') {
      const objects = new Set<string>();
      manifest.tables.forEach((table, index) => {
        if (objects.has(table.name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['tables', index, 'name'],
            message: `duplicate table or view ${quoted(table.name)}`,
          });
        }
        objects.add(table.name);
      });
      const tables = new Set(manifest.tables.filter((t) => t.type === 'table').map((t) => t.name));
      const programs = new Set<string>();
      (manifest.storedPrograms ?? []).forEach((program, index) => {
        // Each kind has its own namespace in a database: a procedure and a function may share a name.
        const key = JSON.stringify([program.kind, program.name]);
        if (programs.has(key)) {
          ctx.addIssue({
            code: 'custom',
            path: ['storedPrograms', index, 'name'],
            message: `duplicate ${program.kind} ${quoted(program.name)}`,
          });
        }
        programs.add(key);
        if ((program.kind === 'trigger') !== (program.table !== undefined)) {
          ctx.addIssue({
            code: 'custom',
            path: ['storedPrograms', index, 'table'],
            message: 'a trigger names its table; nothing else does',
          });
        } else if (program.table !== undefined && !tables.has(program.table)) {
          ctx.addIssue({
            code: 'custom',
            path: ['storedPrograms', index, 'table'],
            message: `unknown table ${quoted(program.table)}`,
          });
        }
      });
      const parts = new Set<string>();
      manifest.files.forEach((file, index) => {
        if (!tables.has(file.table)) {
          ctx.addIssue({
            code: 'custom',
            path: ['files', index, 'table'],
            message: `unknown table ${quoted(file.table)}`,
          });
        }
        // One part loaded twice would load its rows twice.
        const part = JSON.stringify([file.table, file.part]);
        if (parts.has(part)) {
          ctx.addIssue({
            code: 'custom',
            path: ['files', index, 'part'],
            message: `duplicate part ${file.part} of table ${quoted(file.table)}`,
          });
        }
        parts.add(part);
      });
    }
  });
export type BackupManifest = z.infer<typeof BackupManifest>;

/** `files[3].path: path "../x" has a ".." segment` — the entry and the rule, for the operator. */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const where = issue.path
        .map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${String(part)}`))
        .join('');
      return `${where || '(root)'}: ${issue.message}`;
    })
    .join('; ');
}

/** Parses and validates MANIFEST text; throws ManifestError naming the offending entry. */
export function parseManifest(text: string, backup?: string): BackupManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ManifestError(`MANIFEST is not JSON (${(error as Error).message})`, backup, { cause: error });
  }
  const result = BackupManifest.safeParse(json);
  if (!result.success) {
    throw new ManifestError(`MANIFEST is invalid: ${describeIssues(result.error)}`, backup, {
      cause: result.error,
    });
  }
  return result.data;
}

/** Serialises a manifest after checking it against the same schema readers use. */
export function serializeManifest(manifest: BackupManifest): string {
  const result = BackupManifest.safeParse(manifest);
  if (!result.success) {
    throw new ManifestError(
      `refusing to write an invalid MANIFEST: ${describeIssues(result.error)}`,
      manifest.name,
    );
  }
  return `${JSON.stringify(result.data, null, 2)}\n`;
}
