import { z } from 'zod';
import { SystemdService } from '../systemd.ts';

/**
 * The field types the operation requests share. A request arrives as JSON from a state machine
 * (where an absent field may be `null`) or from the CLI's flags: both are parsed by the same schema.
 */

const nullToUndefined = (value: unknown) => (value === null ? undefined : value);

/** An optional field: absent, `undefined` or `null` all mean "not given". */
export function optional<T extends z.ZodType>(schema: T) {
  return z.preprocess(nullToUndefined, schema.optional());
}

/** A field with a default, used when it is absent or `null`. */
export function withDefault<T extends z.ZodType>(schema: T, value: z.util.NoUndefined<z.output<T>>) {
  return z.preprocess(nullToUndefined, schema.default(value));
}

export const FilePath = z.string().min(1).max(4096);

/** A database, table or column name: any MySQL identifier (quoted wherever it reaches SQL). */
export { Identifier as Name } from '../manifest.ts';

export const EnvVarName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be an environment variable name');

/** How many things at once. */
export const Count = z.number().int().min(1).max(1024);

/** `file:///abs/dir` or `s3://bucket/prefix`; opening it checks the form and says how to fix one. */
export const StorageUrl = z.string().min(1).max(4096);

export const HostName = z.string().regex(/^[A-Za-z0-9_.:-]{1,255}$/, 'must be a host name or address');

export const Port = z.number().int().min(1).max(65535);

const sizeUnits: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** `64MiB`, `512KiB`, `1G`, `1000000` (or a number of bytes): a size from 1 KiB to 1 TiB. */
export const ByteSize = z.union([z.string(), z.number()]).transform((given, ctx) => {
  const text = String(given);
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = sizeUnits[match?.[2]?.toLowerCase() ?? 'x'];
  const bytes = match && unit ? Math.floor(Number(match[1]) * unit) : Number.NaN;
  if (!(bytes >= 1024 && bytes <= 2 ** 40)) {
    ctx.addIssue({
      code: 'custom',
      message: `must be a size from 1KiB to 1TiB like 64MiB, got ${JSON.stringify(text)}`,
    });
    return z.NEVER;
  }
  return bytes;
});

/** Where backups are: the storage URL and, for S3, how to reach it. */
export const StorageFields = {
  storage: StorageUrl,
  /** An S3-compatible endpoint (default: AWS_ENDPOINT_URL_S3, else AWS). */
  s3Endpoint: optional(z.url()),
  s3PathStyle: optional(z.boolean()),
  /** Server-side encryption for new objects. */
  sse: optional(z.enum(['AES256', 'aws:kms'])),
  sseKmsKeyId: optional(z.string().min(1).max(2048)),
};

/** The instance an operation drives on this host. */
export const InstanceFields = {
  /** The instance's my.cnf (datadir, socket, port, logs). */
  defaultsFile: FilePath,
  /** The server binary (default: mariadbd or mysqld on PATH). */
  mysqld: optional(FilePath),
  /** Start and stop mysqld through this systemd unit instead of directly. */
  systemdService: optional(SystemdService),
};

export const StorageSchema = z.object(StorageFields);
export type StorageRequest = z.output<typeof StorageSchema>;
export const InstanceSchema = z.object(InstanceFields);
export type InstanceRequest = z.output<typeof InstanceSchema>;
