import { z } from 'zod';
import { BackupName } from '../paths.ts';
import { ShardDir } from '../storage/layout.ts';
import { Count, HostName, InstanceFields, optional, StorageFields, withDefault } from './fields.ts';

/**
 * `stepback drill`: restores a named backup onto a drill instance, checks the restored copy, puts
 * the drill instance's own files back, and writes DRILL.json beside the backup.
 */
export const DrillRequest = z.strictObject({
  ...StorageFields,
  /** The drill instance: kept for drills, never a serving one. */
  ...InstanceFields,
  dir: ShardDir,
  backup: BackupName,
  /** Files downloaded at once. */
  concurrency: withDefault(Count, 4),
  /** Tables CHECK TABLE runs on, chosen at random (every table when fewer). */
  checkTables: withDefault(z.number().int().min(0).max(10_000), 20),
  /** The topology to refuse a serving host by (`file:///dir` or `ssm:/prefix`). */
  topo: optional(z.string().min(1).max(4096)),
  /** This host's id as the topology lists hosts (default: the host name). */
  hostId: optional(HostName),
});
export type DrillRequest = z.output<typeof DrillRequest>;
