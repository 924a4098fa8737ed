import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { z } from 'zod';
import { DEFAULT_MAX_DRILL_AGE_DAYS, type DrillReport, drillReport } from '../../../core/drill-report.ts';
import { ExitCode } from '../../../core/errors.ts';
import { openRequestStorage } from '../../operations/open.ts';
import { renderDrillPage } from '../../report/drill-page.ts';
import { renderTable } from '../../report/format.ts';
import type { ActionRunner } from '../command.ts';
import { addStorageOptions, StorageOptions } from '../options.ts';

const mentionText = (m: { backup: string; ageDays: number } | undefined) =>
  m ? `${m.backup} (${m.ageDays}d)` : '-';

export function renderDrillReport(report: DrillReport): string {
  if (report.shards.length === 0) return `no backups in ${report.storage}`;
  const table = renderTable(
    ['SHARD', 'NEWEST BACKUP (AGE)', 'LAST DRILL', 'LAST PASSING DRILL (AGE)', 'STATE'],
    report.shards.map((s) => [
      `${s.keyspace}/${s.shard}`,
      mentionText(s.newestBackup),
      s.lastDrill ? `${s.lastDrill.outcome} ${mentionText(s.lastDrill)}` : 'never',
      mentionText(s.lastPassingDrill),
      `${s.state}${s.overdue ? ' OVERDUE' : ''}`,
    ]),
  );
  const failed = report.shards.filter((s) => s.lastDrill?.outcome === 'failed');
  return [
    table,
    ...failed.map(
      (s) =>
        `  ${s.keyspace}/${s.shard}: drill of ${s.lastDrill!.backup} failed${s.lastDrill!.differences.length ? `, differs: ${s.lastDrill!.differences.join(', ')}` : ''}`,
    ),
    ...report.shards.flatMap((s) => s.problems.map((p) => `  ${s.keyspace}/${s.shard}: ${p}`)),
    '',
    report.overdue === 0
      ? `every shard passed a drill within ${report.maxDrillAgeDays} days`
      : `${report.overdue} of ${report.shards.length} shard(s) have no passing drill within ${report.maxDrillAgeDays} days`,
  ].join('\n');
}

const ReportOptions = StorageOptions.extend({
  maxDrillAge: z.coerce.number().positive().max(3650).default(DEFAULT_MAX_DRILL_AGE_DAYS),
  html: z.string().min(1).max(4096).optional(),
});

export function registerReport(backups: Command, action: ActionRunner): void {
  const command = addStorageOptions(
    backups
      .command('report')
      .description(
        'every keyspace and shard: its newest backup, its last drill and last passing drill, with ages (exit 5 when a shard has no passing drill within --max-drill-age days)',
      )
      .option('--max-drill-age <days>', 'days a passing drill stays good', String(DEFAULT_MAX_DRILL_AGE_DAYS))
      .option('--html <file>', 'also write the report as a self-contained HTML page'),
  );
  action(command, ReportOptions, async (options, context) => {
    const storage = await openRequestStorage(options, context.env, context.logger);
    try {
      const report = await drillReport(storage, { now: new Date(), maxAgeDays: options.maxDrillAge });
      if (options.html) await fs.writeFile(options.html, renderDrillPage(report));
      return {
        result: report,
        summary: `${renderDrillReport(report)}${options.html ? `\nHTML page: ${options.html}` : ''}`,
        ...(report.overdue > 0 ? { exitCode: ExitCode.verificationFailed } : {}),
      };
    } finally {
      await storage.close();
    }
  });
}
