import { type BackupSummary, inspectBackups } from './backups.ts';
import { type DrillRecord, drillStateOf } from './drills.ts';
import { SNAPSHOT_NAMESPACE } from './storage/layout.ts';
import type { BackupStorage } from './storage/types.ts';
import { mapConcurrent } from './stream/concurrency.ts';

/**
 * How well each shard's backups are proven: its newest backup, its last drill and its last passing
 * drill, with their ages. What `backups report` prints and what the drill-age alarm is computed from.
 */

export const DEFAULT_MAX_DRILL_AGE_DAYS = 8;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * `ok`: the last drill passed within the threshold. `failed`: the last drill failed. `stale`: the
 * last passing drill is older than the threshold. `never`: no backup was ever drilled.
 * `no-backup`: the shard has no complete backup.
 */
export type ShardDrillState = 'ok' | 'failed' | 'stale' | 'never' | 'no-backup';

export interface DrillMention {
  backup: string;
  finishedAt: string;
  ageDays: number;
}

export interface ShardDrillStatus {
  keyspace: string;
  shard: string;
  state: ShardDrillState;
  /** No passing drill within the threshold: what makes the report (and the alarm) fail. */
  overdue: boolean;
  newestBackup?: DrillMention;
  lastDrill?: DrillMention & { outcome: DrillRecord['outcome']; differences: string[] };
  lastPassingDrill?: DrillMention;
  /** DRILL.json files that could not be read (each names its backup). */
  problems: string[];
}

export interface DrillReport {
  generatedAt: string;
  storage: string;
  maxDrillAgeDays: number;
  shards: ShardDrillStatus[];
  /** Shards without a passing drill within the threshold. */
  overdue: number;
}

const ageDays = (iso: string, now: Date) => Math.max(0, (now.getTime() - Date.parse(iso)) / DAY_MS);

/** One shard's status from its backups (oldest first) and each complete one's last drill. */
export function shardStatus(
  keyspace: string,
  shard: string,
  backups: { summary: BackupSummary; drill?: DrillRecord | undefined; problem?: string | undefined }[],
  now: Date,
  maxAgeDays: number,
): ShardDrillStatus {
  const complete = backups.filter((b) => b.summary.complete);
  const newest = complete.at(-1)?.summary;
  const drills = backups
    .map((b) => b.drill)
    .filter((d): d is DrillRecord => d !== undefined)
    .sort((a, b) => Date.parse(a.finishedAt) - Date.parse(b.finishedAt));
  const last = drills.at(-1);
  const passing = drills.filter((d) => d.outcome === 'passed').at(-1);
  const mention = (d: DrillRecord): DrillMention => ({
    backup: d.backup,
    finishedAt: d.finishedAt,
    ageDays: round(ageDays(d.finishedAt, now)),
  });
  const overdue = !passing || ageDays(passing.finishedAt, now) > maxAgeDays;
  const state: ShardDrillState = !newest
    ? 'no-backup'
    : !last
      ? 'never'
      : last.outcome === 'failed'
        ? 'failed'
        : overdue
          ? 'stale'
          : 'ok';
  return {
    keyspace,
    shard,
    state,
    overdue,
    ...(newest?.complete
      ? {
          newestBackup: {
            backup: newest.name,
            finishedAt: newest.manifest.finishedAt,
            ageDays: round(ageDays(newest.manifest.finishedAt, now)),
          },
        }
      : {}),
    ...(last
      ? {
          lastDrill: {
            ...mention(last),
            outcome: last.outcome,
            differences: last.differences.map((d) =>
              d.table ? `${d.database}.${d.table}` : (d.file ?? d.problem),
            ),
          },
        }
      : {}),
    ...(passing ? { lastPassingDrill: mention(passing) } : {}),
    problems: backups.flatMap((b) => (b.problem ? [`${b.summary.name}: ${b.problem}`] : [])),
  };
}

/** Every keyspace and shard in storage (the snapshot namespace left out), each with its status. */
export async function drillReport(
  storage: BackupStorage,
  options: { now: Date; maxAgeDays: number; concurrency?: number },
): Promise<DrillReport> {
  const shards: ShardDrillStatus[] = [];
  for (const keyspace of await storage.listDirectories('')) {
    if (keyspace === SNAPSHOT_NAMESPACE) continue;
    for (const shard of await storage.listDirectories(keyspace)) {
      const dir = `${keyspace}/${shard}`;
      const summaries = await inspectBackups(storage, dir);
      if (summaries.length === 0) continue;
      const backups = await mapConcurrent(summaries, options.concurrency ?? 16, async (summary) => {
        if (!summary.complete) return { summary };
        const drill = await drillStateOf(storage.openBackup(dir, summary.name));
        return { summary, drill: drill.record, problem: drill.problem };
      });
      shards.push(shardStatus(keyspace, shard, backups, options.now, options.maxAgeDays));
    }
  }
  return {
    generatedAt: options.now.toISOString(),
    storage: storage.url,
    maxDrillAgeDays: options.maxAgeDays,
    shards,
    overdue: shards.filter((s) => s.overdue).length,
  };
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
