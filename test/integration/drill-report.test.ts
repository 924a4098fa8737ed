import fs from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DrillReport } from '../../core/drill-report.ts';
import { type DrillRecord, serializeDrillRecord } from '../../core/drills.ts';
import { silentLogger } from '../../core/log.ts';
import { FileBackupStorage } from '../../core/storage/file.ts';
import { drillAge } from '../../functions/drill-age.ts';
import { embeddedMetricLine, invokeFunction, type MetricValue } from '../../functions/runtime.ts';
import { runStepback } from '../support/cli.ts';
import { physicalManifest } from '../support/manifests.ts';
import { tempDir } from '../support/root.ts';

const DAY = 24 * 60 * 60 * 1000;
let root: string;
let storage: FileBackupStorage;

const daysAgo = (days: number) => new Date(Date.now() - days * DAY).toISOString();

/** A complete (empty) backup of `dir` that finished `days` ago. */
async function addBackup(dir: string, name: string, days: number) {
  const [keyspace = '', shard = ''] = dir.split('/');
  const handle = await storage.startBackup(dir, name);
  await handle.endBackup(
    physicalManifest({
      name,
      dir,
      keyspace,
      shard,
      finishedAt: daysAgo(days),
      startedAt: daysAgo(days),
      files: [],
    }),
  );
  return handle;
}

async function addDrill(dir: string, name: string, days: number, outcome: DrillRecord['outcome']) {
  const record: DrillRecord = {
    formatVersion: 1,
    dir,
    backup: name,
    outcome,
    startedAt: daysAgo(days),
    finishedAt: daysAgo(days),
    durationSeconds: 12,
    drillHost: 'drill1',
    defaultsFile: '/etc/mysql/drill.cnf',
    tablesChecked: 3,
    tablesCheckedByServer: ['shop.orders'],
    evidence: true,
    differences:
      outcome === 'failed' ? [{ database: 'shop', table: 'orders', problem: 'checksum differs' }] : [],
    problems: [],
  };
  await storage.openBackup(dir, name).writeRecord('DRILL.json', serializeDrillRecord(record));
}

beforeAll(async () => {
  root = await tempDir('drill-report');
  storage = new FileBackupStorage(root);
  // shop/0: drilled and passed two days ago, a newer backup not drilled yet.
  await addBackup('shop/0', '2026-11-20.000000.db1', 3);
  await addDrill('shop/0', '2026-11-20.000000.db1', 2, 'passed');
  await addBackup('shop/0', '2026-11-22.000000.db1', 1);
  // shop/1: never drilled.
  await addBackup('shop/1', '2026-11-22.000000.db2', 1);
  // shop/2: its last drill failed.
  await addBackup('shop/2', '2026-11-22.000000.db3', 1);
  await addDrill('shop/2', '2026-11-22.000000.db3', 1, 'failed');
  // users/0: passed, but ten days ago.
  await addBackup('users/0', '2026-11-10.000000.db4', 11);
  await addDrill('users/0', '2026-11-10.000000.db4', 10, 'passed');
  // A snapshot is not a shard's backup: the report leaves its namespace out.
  await addBackup('snapshots/shop/0/-', '2026-11-22.000000.db1', 1);
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

function report(extra: string[] = []) {
  return runStepback(['backups', 'report', '--storage', `file://${root}`, ...extra]);
}

describe('stepback backups report', () => {
  it('lists a passing, a never-drilled, a failed and a stale shard, and exits 5', async () => {
    const run = await report(['--json']);
    expect(run.code).toBe(5);
    const result = run.json as DrillReport;
    const states = Object.fromEntries(
      result.shards.map((s) => [`${s.keyspace}/${s.shard}`, [s.state, s.overdue]]),
    );
    expect(states).toEqual({
      'shop/0': ['ok', false],
      'shop/1': ['never', true],
      'shop/2': ['failed', true],
      'users/0': ['stale', true],
    });
    expect(result.overdue).toBe(3);
    const shop0 = result.shards.find((s) => s.shard === '0' && s.keyspace === 'shop');
    expect(shop0?.newestBackup?.backup).toBe('2026-11-22.000000.db1');
    expect(shop0?.lastPassingDrill?.backup).toBe('2026-11-20.000000.db1');
  });

  it('says the same in text, naming the failed drill and what differs', async () => {
    const run = await report();
    expect(run.code).toBe(5);
    expect(run.stdout).toMatch(/shop\/2 .*failed/);
    expect(run.stdout).toContain('shop/2: drill of 2026-11-22.000000.db3 failed, differs: shop.orders');
    expect(run.stdout).toContain('3 of 4 shard(s) have no passing drill within 8 days');
  });

  it('with a longer threshold the stale shard is good again; the never-drilled and failed ones stay overdue', async () => {
    const run = await report(['--max-drill-age', '30', '--json']);
    expect(run.code).toBe(5);
    expect((run.json as DrillReport).overdue).toBe(2);
  });

  it('writes an HTML page that a headless browser renders with each shard in its state', async () => {
    const page = path.join(root, 'drills.html');
    const run = await report(['--html', page]);
    expect(run.code).toBe(5);
    const profile = await tempDir('chromium-profile');
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const tab = await context.newPage();
      await tab.goto(`file://${page}`);
      const rows = await tab.$$eval('#shards tbody tr', (trs) =>
        trs.map((tr) => ({
          shard: tr.getAttribute('data-shard'),
          state: tr.getAttribute('data-state'),
          text: tr.textContent ?? '',
        })),
      );
      expect(rows.map((r) => [r.shard, r.state])).toEqual([
        ['shop/0', 'ok'],
        ['shop/1', 'never'],
        ['shop/2', 'failed'],
        ['users/0', 'stale'],
      ]);
      expect(rows[1]?.text).toContain('never drilled');
      expect(rows[2]?.text).toContain('FAILED');
      expect(rows[2]?.text).toContain('differs: shop.orders');
      expect(rows[3]?.text).toContain('stale (overdue)');
      // The failing shard stands out: its state cell is drawn in red.
      const failedColour = await tab.$eval(
        'tr[data-state="failed"] td.state',
        (td) =>
          (
            globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }
          ).getComputedStyle(td).backgroundColor,
      );
      expect(failedColour).toBe('rgb(255, 204, 204)');
      expect(await tab.textContent('#verdict')).toContain(
        '3 of 4 shard(s) have no passing drill within 8 days',
      );
    } finally {
      await context.close();
    }
  });
});

describe('stepback backups list', () => {
  it("shows each backup's last drill: passed, failed or never", async () => {
    const passed = await runStepback([
      'backups',
      'list',
      '--storage',
      `file://${root}`,
      '--dir',
      'shop/0',
      '--json',
    ]);
    expect((passed.json as { name: string; drill: string }[]).map((e) => [e.name, e.drill])).toEqual([
      ['2026-11-20.000000.db1', 'passed'],
      ['2026-11-22.000000.db1', 'never'],
    ]);
    const failed = await runStepback(['backups', 'list', '--storage', `file://${root}`, '--dir', 'shop/2']);
    expect(failed.stdout).toMatch(/2026-11-22\.000000\.db3 .* complete\s+failed/);
  });
});

describe('the drill-age function', () => {
  it('publishes the number of overdue shards as the metric the drill alarm watches', async () => {
    const published: MetricValue[] = [];
    const result = await invokeFunction(
      drillAge,
      { maxAgeDays: 8 },
      {
        settings: {
          storageUrl: `file://${root}`,
          topologyUrl: undefined,
          defaults: {
            defaultsFile: '/etc/mysql/my.cnf',
            retention: { keepCount: 3, keepDays: 7 },
            backup: { engine: 'physical', compression: 'zstd', concurrency: 4, shardsPerExecution: 400 },
          },
          region: undefined,
          hostsAreDefaultsFiles: true,
        },
        logger: silentLogger,
        now: () => new Date(),
        publishMetric: (metric) => published.push(metric),
      },
    );
    expect(published).toEqual([
      {
        namespace: 'stepback',
        name: 'OverdueDrillShards',
        dimensions: { Storage: `file://${root}` },
        value: 3,
        unit: 'Count',
      },
    ]);
    expect(result).toMatchObject({ ok: true, drilled: 0, shards: 4 });
    // In Lambda the value is a log line in CloudWatch's embedded metric format.
    const line = JSON.parse(embeddedMetricLine(published[0]!, new Date(0)));
    expect(line).toEqual({
      _aws: {
        Timestamp: 0,
        CloudWatchMetrics: [
          {
            Namespace: 'stepback',
            Dimensions: [['Storage']],
            Metrics: [{ Name: 'OverdueDrillShards', Unit: 'Count' }],
          },
        ],
      },
      Storage: `file://${root}`,
      OverdueDrillShards: 3,
    });
  });
});
