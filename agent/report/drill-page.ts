import type { DrillReport, ShardDrillStatus } from '../../core/drill-report.ts';

/**
 * The drill report as one self-contained HTML page (no script, no external files): a person opens it
 * from a mail or a bucket and sees at once which shards are not proven restorable.
 */

const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

const stateWords: Record<ShardDrillStatus['state'], string> = {
  ok: 'passed',
  failed: 'FAILED',
  stale: 'stale',
  never: 'never drilled',
  'no-backup': 'no backup',
};

function mention(m: { backup: string; ageDays: number } | undefined): string {
  return m ? `${escapeHtml(m.backup)} <span class="age">${m.ageDays} d ago</span>` : '—';
}

function row(shard: ShardDrillStatus): string {
  const name = `${shard.keyspace}/${shard.shard}`;
  const differs =
    shard.lastDrill?.outcome === 'failed' && shard.lastDrill.differences.length > 0
      ? `<div class="differs">differs: ${escapeHtml(shard.lastDrill.differences.slice(0, 10).join(', '))}</div>`
      : '';
  return `<tr data-shard="${escapeHtml(name)}" data-state="${shard.state}" data-overdue="${shard.overdue}">
<td>${escapeHtml(name)}</td><td>${mention(shard.newestBackup)}</td>
<td>${shard.lastDrill ? `${escapeHtml(shard.lastDrill.outcome)}: ${mention(shard.lastDrill)}${differs}` : '—'}</td>
<td>${mention(shard.lastPassingDrill)}</td>
<td class="state ${shard.state}">${stateWords[shard.state]}${shard.overdue ? ' (overdue)' : ''}</td></tr>`;
}

export function renderDrillPage(report: DrillReport): string {
  const verdict =
    report.overdue === 0
      ? `Every shard passed a drill within ${report.maxDrillAgeDays} days.`
      : `${report.overdue} of ${report.shards.length} shard(s) have no passing drill within ${report.maxDrillAgeDays} days.`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stepback restore drills</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.4em .7em;text-align:left;vertical-align:top}
.state.ok{background:#dfd}.state.failed{background:#fcc;font-weight:bold}.state.stale,.state.never,.state.no-backup{background:#ffd}
.age{color:#666}.differs{color:#a00;font-size:.9em}
</style></head><body>
<h1>Restore drills</h1>
<p id="verdict" data-overdue="${report.overdue}">${escapeHtml(verdict)}</p>
<p>Storage ${escapeHtml(report.storage)}, generated ${escapeHtml(report.generatedAt)} (UTC).</p>
<table id="shards"><thead><tr><th>Shard</th><th>Newest backup</th><th>Last drill</th><th>Last passing drill</th><th>State</th></tr></thead>
<tbody>
${report.shards.map(row).join('\n')}
</tbody></table>
</body></html>
`;
}
