import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { storedName } from '../../agent/engines/physical/copy.ts';
import {
  databasesWithFiles,
  listDataFiles,
  listReplacedEntries,
} from '../../agent/engines/physical/files.ts';
import { dataLayout, refusedPath } from '../../agent/engines/physical/layout.ts';
import { planRestoreFiles } from '../../agent/engines/physical/stage.ts';
import { mysqldConfigFrom } from '../../agent/mysqld/config.ts';
import { ManifestError, StepbackError } from '../../core/errors.ts';
import { recordingLogger, silentLogger } from '../../core/log.ts';
import { BackupManifest, type FileBase } from '../../core/manifest.ts';
import { StoredFileName } from '../../core/paths.ts';
import { physicalManifest } from '../support/manifests.ts';
import { tempDir } from '../support/root.ts';

let root: string;
let datadir: string;

/** A config as `mysqld --verbose --help` would resolve it, for a layout under `root`. */
function config(overrides: Record<string, string> = {}) {
  return mysqldConfigFrom(
    path.join(root, 'my.cnf'),
    new Map(
      Object.entries({
        datadir,
        socket: path.join(datadir, 'mysqld.sock'),
        'pid-file': path.join(datadir, 'mysqld.pid'),
        'log-bin': 'mysql-bin',
        'relay-log': 'relay-bin',
        'aria-log-dir-path': datadir,
        'secure-file-priv': path.join(datadir, 'files'),
        'log-error': path.join(datadir, 'error.log'),
        tmpdir: '/tmp',
        ...overrides,
      }),
    ),
    new Map(),
  );
}

/** Creates files (content = their path) and directories (names ending in /) under `dir`. */
async function tree(dir: string, entries: string[]): Promise<void> {
  for (const entry of entries) {
    const target = path.join(dir, entry);
    if (entry.endsWith('/')) {
      await fs.mkdir(target, { recursive: true });
    } else {
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.writeFile(target, entry);
    }
  }
}

/** The shared fixture with its system tablespace under the base a real backup records. */
function restorableManifest() {
  const manifest = physicalManifest();
  return {
    ...manifest,
    files: manifest.files.map((file) =>
      file.path === 'ibdata1' ? { ...file, base: 'innodb-data' as const } : file,
    ),
  };
}

const described = (files: { base: FileBase; path: string }[]) => files.map((f) => `${f.base}:${f.path}`);

beforeEach(async () => {
  root = await tempDir('physical-files');
  datadir = path.join(root, 'data');
});

describe('listDataFiles', () => {
  it('takes the system tablespace, redo and undo logs, Aria logs, datadir data files and every database directory, and nothing else', async () => {
    await tree(datadir, [
      'ibdata1',
      'ib_logfile0',
      'undo001',
      'aria_log.00000001',
      'aria_log_control',
      'ib_buffer_pool',
      'mysql_upgrade_info',
      'mysql/global_priv.MAD',
      'mysql/global_priv.MAI',
      'mysql/global_priv.frm',
      'performance_schema/db.opt',
      'shop/db.opt',
      'shop/orders.ibd',
      'shop/orders.frm',
      'shop/legacy.MYD',
      'shop/#sql-1a2b_3.frm',
      // never data:
      'mysql-bin.000001',
      'mysql-bin.index',
      'mysql-bin.state',
      'relay-bin.000002',
      'relay-bin.index',
      'master.info',
      'relay-log.info',
      'multi-master.info',
      'mysqld.pid',
      'mysqld.sock',
      'error.log',
      'ibtmp1',
      'auto.cnf',
      'server-key.pem',
      'ddl_recovery.log',
      'files/orders.csv',
      'lost+found/',
      '#innodb_temp/temp_1.ibt',
      '.hidden/x',
    ]);
    const files = await listDataFiles(dataLayout(config()), silentLogger);
    expect(described(files)).toEqual([
      'data:aria_log.00000001',
      'data:aria_log_control',
      'data:ib_buffer_pool',
      'data:mysql/global_priv.MAD',
      'data:mysql/global_priv.MAI',
      'data:mysql/global_priv.frm',
      'data:mysql_upgrade_info',
      'data:performance_schema/db.opt',
      'data:shop/db.opt',
      'data:shop/legacy.MYD',
      'data:shop/orders.frm',
      'data:shop/orders.ibd',
      'innodb-data:ibdata1',
      'innodb-log:ib_logfile0',
      'innodb-undo:undo001',
    ]);
    const orders = files.find((f) => f.path === 'shop/orders.ibd')!;
    expect(orders).toMatchObject({
      absolute: path.join(datadir, 'shop/orders.ibd'),
      size: 'shop/orders.ibd'.length,
    });
  });

  it('finds InnoDB files in their own directories, and never takes a log directory inside the datadir for a database', async () => {
    const innodb = path.join(root, 'innodb');
    await tree(root, [
      'innodb/ibdata1',
      'innodb/ibdata2',
      'innodb/undo_001',
      'data/redo/#innodb_redo/#ib_redo10',
      'data/redo/#innodb_redo/#ib_redo11_tmp',
      'data/binlogs/mysql-bin.000001',
      'data/mysql.ibd',
      'data/ts1.ibd',
      'data/#ib_16384_0.dblwr',
      'data/shop/t.ibd',
    ]);
    const layout = dataLayout(
      config({
        'innodb-data-home-dir': innodb,
        'innodb-undo-directory': innodb,
        'innodb-log-group-home-dir': path.join(datadir, 'redo'),
        'innodb-data-file-path': 'ibdata1:12M;ibdata2:12M:autoextend',
        'log-bin': path.join(datadir, 'binlogs', 'mysql-bin'),
      }),
    );
    expect(described(await listDataFiles(layout, silentLogger))).toEqual([
      'data:#ib_16384_0.dblwr',
      'data:mysql.ibd',
      'data:shop/t.ibd',
      'data:ts1.ibd',
      'innodb-data:ibdata1',
      'innodb-data:ibdata2',
      'innodb-log:#innodb_redo/#ib_redo10',
      'innodb-undo:undo_001',
    ]);
  });

  it('refuses a table whose data lives outside the datadir (DATA DIRECTORY): a cold copy would lose it', async () => {
    await tree(datadir, ['ibdata1', 'shop/far.isl', 'shop/far.frm']);
    await expect(listDataFiles(dataLayout(config()), silentLogger)).rejects.toThrow(
      /shop\/far\.isl places a table's data outside the datadir/,
    );
  });

  it('fails on a dangling symbolic link in a database directory, naming it, instead of skipping data', async () => {
    await tree(datadir, ['ibdata1', 'shop/db.opt']);
    await fs.symlink(path.join(root, 'nowhere.ibd'), path.join(datadir, 'shop', 'gone.ibd'));
    const error = await listDataFiles(dataLayout(config()), silentLogger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StepbackError);
    expect((error as Error).message).toContain(path.join(datadir, 'shop', 'gone.ibd'));
    expect((error as StepbackError).hint).toMatch(/symbolic link/);
  });

  it('follows a symbolically linked database directory, and skips a special file with a warning', async () => {
    await tree(root, ['elsewhere/shop/t.ibd', 'data/ibdata1']);
    await fs.symlink(path.join(root, 'elsewhere', 'shop'), path.join(datadir, 'shop'));
    execFileSync('mkfifo', [path.join(root, 'elsewhere', 'shop', 'pipe')]);
    const logger = recordingLogger();
    expect(described(await listDataFiles(dataLayout(config()), logger))).toEqual([
      'data:shop/t.ibd',
      'innodb-data:ibdata1',
    ]);
    expect(logger.records.filter((r) => r.level === 'warn').map((r) => r.message)).toEqual([
      'not copying shop/pipe: not a regular file',
    ]);
  });
});

describe('refusedPath (what a manifest may restore)', () => {
  it('accepts what a backup takes', () => {
    const layout = dataLayout(config());
    for (const [base, relative] of [
      ['data', 'shop/orders.ibd'],
      ['data', 'aria_log_control'],
      ['data', 'mysql.ibd'],
      ['innodb-data', 'ibdata1'],
      ['innodb-log', 'ib_logfile0'],
      ['innodb-log', '#innodb_redo/#ib_redo7'],
      ['innodb-undo', 'undo002'],
    ] as const) {
      expect(refusedPath(layout, base, relative), `${base}:${relative}`).toBeUndefined();
    }
  });

  it('refuses replication state, host identity, temporary files and anything in the wrong base', () => {
    const layout = dataLayout(config({ 'innodb-log-group-home-dir': path.join(datadir, 'redo') }));
    for (const [base, relative] of [
      ['data', 'mysql-bin.000001'],
      ['data', 'master.info'],
      ['data', 'auto.cnf'],
      ['data', 'ibtmp1'],
      ['data', 'ibdata1'],
      ['data', 'redo/ib_logfile0'],
      ['data', 'files/x.csv'],
      ['data', 'lost+found/x'],
      ['data', '#innodb_temp/temp_1.ibt'],
      ['data', 'shop/#sql-1.ibd'],
      ['innodb-data', 'ibdata9'],
      ['innodb-data', 'x/ibdata1'],
      ['innodb-log', 'ib_logfile0.bak'],
      ['innodb-undo', 'shop/undo001'],
    ] as const) {
      expect(refusedPath(layout, base, relative), `${base}:${relative}`).toBeDefined();
    }
  });
});

describe('planRestoreFiles', () => {
  const area = (stagingRoot: string) => ({
    holding: [stagingRoot],
    stagedRoot: (base: FileBase) => path.join(stagingRoot, 'staged', base),
    heldDirectory: (dir: string) => path.join(stagingRoot, 'old', path.basename(dir)),
  });

  it('places every file under its base in the staging area and under its base in the datadir', () => {
    const planned = planRestoreFiles(dataLayout(config()), area(`${datadir}.x`), restorableManifest());
    expect(planned.map((p) => [p.staged, p.destination])).toEqual([
      [`${datadir}.x/staged/innodb-data/ibdata1`, `${datadir}/ibdata1`],
      [`${datadir}.x/staged/data/shop/orders.ibd`, `${datadir}/shop/orders.ibd`],
      [`${datadir}.x/staged/innodb-log/ib_logfile0`, `${datadir}/ib_logfile0`],
    ]);
  });

  it('refuses an entry that escapes its base even when the manifest schema was bypassed', () => {
    const manifest = restorableManifest();
    const escaping = {
      ...manifest,
      files: [...manifest.files, { ...manifest.files[1]!, name: 'x', path: '../../etc/cron.d/x' }],
    };
    expect(BackupManifest.safeParse(escaping).success).toBe(false);
    expect(() => planRestoreFiles(dataLayout(config()), area(`${datadir}.x`), escaping)).toThrow(
      ManifestError,
    );
  });

  it('refuses an entry that is not a data file, naming it', () => {
    const manifest = restorableManifest();
    const binlog = {
      ...manifest,
      files: [...manifest.files, { ...manifest.files[1]!, name: 'x', path: 'mysql-bin.000009' }],
    };
    expect(() => planRestoreFiles(dataLayout(config()), area(`${datadir}.x`), binlog)).toThrow(
      /file x \(data:mysql-bin\.000009\) is not a data file of the datadir; refusing to restore it/,
    );
  });

  it("refuses a backup whose system tablespace does not match the instance's innodb_data_file_path", () => {
    const layout = dataLayout(config({ 'innodb-data-file-path': 'ibdata1:12M;ibdata2:12M:autoextend' }));
    expect(() => planRestoreFiles(layout, area(`${datadir}.x`), restorableManifest())).toThrow(
      /system tablespace \(ibdata1\) does not match innodb_data_file_path of this instance \(ibdata1, ibdata2\)/,
    );
  });
});

describe('listReplacedEntries and databasesWithFiles', () => {
  it('replaces data, database directories and replication state, and keeps host files', async () => {
    await tree(datadir, [
      'ibdata1',
      'ib_logfile0',
      'mysql-bin.000001',
      'mysql-bin.index',
      'relay-bin.000001',
      'master.info',
      'shop/t.ibd',
      'empty/db.opt',
      'mysql/user.frm',
      'auto.cnf',
      'error.log',
      'ibtmp1',
      'mysqld.pid',
    ]);
    const layout = dataLayout(config());
    expect((await listReplacedEntries(layout)).map((entry) => path.relative(datadir, entry))).toEqual([
      'empty',
      'ib_logfile0',
      'ibdata1',
      'master.info',
      'mysql',
      'mysql-bin.000001',
      'mysql-bin.index',
      'relay-bin.000001',
      'shop',
    ]);
    expect(await databasesWithFiles(layout)).toEqual(['mysql', 'shop']);
  });
});

describe('storedName', () => {
  it('makes flat, unique, storage-safe names that say which file they hold', () => {
    const names = [
      storedName(0, 3, { base: 'innodb-data', path: 'ibdata1' }, 'zstd'),
      storedName(1, 3, { base: 'data', path: 'shop/orders.ibd' }, 'zstd'),
      storedName(2, 3, { base: 'data', path: `caf@00e9/${'x'.repeat(300)}.ibd` }, 'none'),
    ];
    expect(names.slice(0, 2)).toEqual(['0000.innodb-data.ibdata1.zst', '0001.shop.orders.ibd.zst']);
    for (const name of names) expect(StoredFileName.safeParse(name).success, name).toBe(true);
    expect(storedName(12_345, 20_000, { base: 'data', path: 'a/b' }, 'gzip')).toBe('12345.a.b.gz');
  });
});
