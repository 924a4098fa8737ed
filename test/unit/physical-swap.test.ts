import fs from 'node:fs/promises';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { dataLayout } from '../../agent/engines/physical/layout.ts';
import {
  applySwap,
  checkJournal,
  planSwap,
  removeHolding,
  restoreArea,
  rollBackSwap,
  type SwapPlan,
} from '../../agent/engines/physical/swap.ts';
import { mysqldConfigFrom } from '../../agent/mysqld/config.ts';
import { tempDir } from '../support/root.ts';

let root: string;
let datadir: string;

function layout() {
  return dataLayout(
    mysqldConfigFrom(
      path.join(root, 'my.cnf'),
      new Map([
        ['datadir', datadir],
        ['socket', path.join(root, 'mysqld.sock')],
        ['log-bin', 'mysql-bin'],
      ]),
      new Map(),
    ),
  );
}

async function write(target: string, content: string): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  await fs.writeFile(target, content);
}

/** Every file under `dir` with its content: what a rollback must reproduce exactly. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  const files: Record<string, string> = {};
  for (const entry of entries.filter((e) => e.isFile())) {
    const absolute = path.join(entry.parentPath, entry.name);
    files[path.relative(dir, absolute)] = await fs.readFile(absolute, 'utf8');
  }
  return files;
}

/** An instance with old data, and a staged restore of new data beside it. */
async function prepare(): Promise<{ plan: SwapPlan; holding: string[] }> {
  for (const file of [
    'ibdata1',
    'ib_logfile0',
    'mysql-bin.000001',
    'mysql-bin.index',
    'old_db/t.ibd',
    'shop/t.ibd',
    'auto.cnf',
  ]) {
    await write(path.join(datadir, file), `old ${file}`);
  }
  const area = await restoreArea(layout());
  for (const [base, file] of [
    ['innodb-data', 'ibdata1'],
    ['innodb-log', 'ib_logfile0'],
    ['data', 'shop/t.ibd'],
    ['data', 'shop/u.ibd'],
    ['data', 'new_db/t.ibd'],
  ] as const) {
    await write(path.join(area.stagedRoot(base), file), `new ${file}`);
  }
  const plan = await planSwap(layout(), area, [
    { base: 'innodb-data', top: 'ibdata1' },
    { base: 'innodb-log', top: 'ib_logfile0' },
    { base: 'data', top: 'shop' },
    { base: 'data', top: 'new_db' },
  ]);
  return { plan, holding: area.holding };
}

beforeEach(async () => {
  root = await tempDir('physical-swap');
  datadir = path.join(root, 'data');
});

describe('the restore swap', () => {
  it('moves every old data entry and the replication logs aside, and the restored ones in', async () => {
    const { plan, holding } = await prepare();
    expect(holding).toEqual([`${datadir}.stepback-restore`]);
    await applySwap(plan, layout());
    expect(await snapshot(datadir)).toEqual({
      'auto.cnf': 'old auto.cnf',
      ibdata1: 'new ibdata1',
      ib_logfile0: 'new ib_logfile0',
      'new_db/t.ibd': 'new new_db/t.ibd',
      'shop/t.ibd': 'new shop/t.ibd',
      'shop/u.ibd': 'new shop/u.ibd',
    });
    checkJournal({ phase: 'swapping', holding, plan }, layout());
    await removeHolding(holding);
    expect(await fs.stat(holding[0]!).catch(() => undefined)).toBeUndefined();
  });

  it('puts the old files back exactly, wherever a swap was interrupted', async () => {
    const before = await (async () => {
      await prepare();
      return snapshot(datadir);
    })();
    const moves = (plan: SwapPlan) => [
      ...plan.aside.map((m) => [m.live, m.held] as const),
      ...plan.in.map((m) => [m.staged, m.live] as const),
    ];
    const { plan: probe } = await prepare();
    const total = moves(probe).length;
    await fs.rm(root, { recursive: true, force: true });
    for (let done = 0; done <= total; done++) {
      await fs.mkdir(root, { recursive: true });
      const { plan, holding } = await prepare();
      for (const [from, to] of moves(plan).slice(0, done)) {
        await fs.mkdir(path.dirname(to), { recursive: true });
        await fs.rename(from, to);
      }
      await rollBackSwap(plan, layout(), { serverRan: false });
      expect(await snapshot(datadir), `after ${done} of ${total} moves`).toEqual(before);
      await removeHolding(holding);
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('removes what the restored server created before putting the old files back', async () => {
    const { plan } = await prepare();
    const before = await snapshot(datadir);
    await applySwap(plan, layout());
    await write(path.join(datadir, 'mysql-bin.000001'), 'new binlog');
    await write(path.join(datadir, 'mysql-bin.index'), 'new index');
    await write(path.join(datadir, '_stepback/local_metadata.ibd'), 'new');
    await fs.appendFile(path.join(datadir, 'ibdata1'), ' changed by the restored server');
    await rollBackSwap(plan, layout(), { serverRan: true });
    expect(await snapshot(datadir)).toEqual(before);
  });

  it('refuses to put an old entry back over something it does not know, naming it', async () => {
    const { plan } = await prepare();
    await applySwap(plan, layout());
    await fs.rm(path.join(datadir, 'ibdata1'));
    await write(path.join(datadir, 'mysql-bin.000001'), 'written meanwhile');
    await expect(rollBackSwap(plan, layout(), { serverRan: false })).rejects.toThrow(/mysql-bin\.000001/);
  });

  it('refuses a journal whose moves reach outside the restore', async () => {
    const { plan, holding } = await prepare();
    const tampered = { ...plan, aside: [{ live: '/etc/passwd', held: `${holding[0]}/old/0/passwd` }] };
    expect(() => checkJournal({ phase: 'swapping', holding, plan: tampered }, layout())).toThrow(
      /outside the restore/,
    );
  });
});
