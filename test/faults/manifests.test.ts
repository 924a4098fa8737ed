import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planRestoreFiles } from '../../agent/engines/physical/stage.ts';
import type { RestoreArea } from '../../agent/engines/physical/swap.ts';
import { ManifestError } from '../../core/errors.ts';
import {
  type BackupManifest,
  MANIFEST_FILE,
  type PhysicalManifest,
  parseManifest,
} from '../../core/manifest.ts';
import { resolveUnder, unsafeRelativePathReason } from '../../core/paths.ts';
import { runStepback } from '../support/cli.ts';
import { stateOf, tableChecksums } from '../support/data.ts';
import { checkProperty, newPaths, recordFault, runs, treeOf } from '../support/faults.ts';
import { logicalManifest, physicalManifest } from '../support/manifests.ts';
import { createTestInstance, type TestInstance } from '../support/mariadb.ts';
import { applyMutation, type FieldPath, junk, mutationOf, withField } from '../support/mutations.ts';
import { tempDir } from '../support/root.ts';

/**
 * Hostile MANIFESTs: backup storage is shared and a manifest is untrusted input. Every bad one is
 * refused with INVALID_MANIFEST (exit 5) before anything is written, and nothing appears outside
 * the directories a restore may write.
 */

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** `files[3].path` as parseManifest names a field. */
function fieldLabel(fieldPath: FieldPath): string {
  return fieldPath
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${part}`))
    .join('');
}

/** What must hold of every manifest the schema accepts. */
function checkAccepted(manifest: BackupManifest): void {
  const names = new Set<string>([MANIFEST_FILE]);
  const destinations = new Set<string>();
  for (const file of manifest.files) {
    expect(file.name).toMatch(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/);
    expect(names.has(file.name)).toBe(false);
    names.add(file.name);
    for (const size of [file.rawSize, file.storedSize])
      expect(Number.isSafeInteger(size) && size >= 0).toBe(true);
    if ('base' in file) {
      expect(unsafeRelativePathReason(file.path)).toBeUndefined();
      expect(destinations.has(`${file.base}:${file.path}`)).toBe(false);
      destinations.add(`${file.base}:${file.path}`);
    }
  }
  for (const segment of manifest.dir.split('/')) expect(['', '.', '..']).not.toContain(segment);
}

/** Parses `value` as stored text; returns the manifest or the ManifestError (anything else fails the test). */
function parseStored(value: unknown): BackupManifest | ManifestError {
  let text: string;
  try {
    text = typeof value === 'string' ? value : (JSON.stringify(value) ?? 'undefined');
  } catch {
    text = '{"unserialisable": true}';
  }
  try {
    return parseManifest(text, 'ks/0/fuzzed');
  } catch (error) {
    if (error instanceof ManifestError) return error;
    throw error;
  }
}

const safeSegment = fc.stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,11}$/);
/** A relative path that must be refused, and why. */
const hostilePath = fc.oneof(
  fc
    .tuple(
      fc.array(safeSegment, { maxLength: 3 }),
      fc.constantFrom('..', '.', ''),
      fc.array(safeSegment, { maxLength: 3 }),
    )
    .map(([before, bad, after]) => [...before, bad, ...after].join('/'))
    .filter((p) => unsafeRelativePathReason(p) !== undefined),
  fc.array(safeSegment, { minLength: 1, maxLength: 4 }).map((segments) => `/${segments.join('/')}`),
  fc
    .tuple(safeSegment, fc.constantFrom('\0', '\\', '/../', '\0../'), safeSegment)
    .map(([a, bad, b]) => `${a}${bad}${b}`),
  fc.constantFrom('', '..', '../../../etc/passwd', '/etc/passwd', 'shop/../../x', 'a'.repeat(5000)),
);
/** A byte count that is not a safe non-negative integer. */
const hugeNumber = fc.oneof(
  fc.constantFrom(2 ** 53, 2 ** 64, 1e308, -1, -(2 ** 53), 0.5),
  fc.double({ min: 2 ** 53, noNaN: true }),
  fc.integer({ max: -1 }),
  fc.double({ min: 0, max: 1e6, noInteger: true, noNaN: true }),
);
const hostileName = fc.constantFrom(
  MANIFEST_FILE,
  '../x',
  'a/b',
  '.hidden',
  '',
  'a\0b',
  'x'.repeat(300),
  '/abs',
);

type Hostile = { kind: string; manifest: unknown; field: FieldPath };

/** A valid manifest made hostile in one way that must be refused, with the field it breaks. */
const hostileManifest: fc.Arbitrary<Hostile> = fc.oneof(
  fc.tuple(fc.nat(2), hostilePath).map(([i, bad]) => ({
    kind: 'unsafe path',
    manifest: withField(physicalManifest(), ['files', i, 'path'], bad),
    field: ['files', i, 'path'],
  })),
  fc.tuple(fc.nat(2), fc.constantFrom('rawSize', 'storedSize'), hugeNumber).map(([i, key, bad]) => ({
    kind: 'huge number',
    manifest: withField(physicalManifest(), ['files', i, key], bad),
    field: ['files', i, key],
  })),
  fc.tuple(fc.constantFrom('part', 'rows'), hugeNumber).map(([key, bad]) => ({
    kind: 'huge number',
    manifest: withField(logicalManifest(), ['files', 0, key], bad),
    field: ['files', 0, key],
  })),
  fc.tuple(fc.nat(2), hostileName).map(([i, bad]) => ({
    kind: 'unsafe name',
    manifest: withField(physicalManifest(), ['files', i, 'name'], bad),
    field: ['files', i, 'name'],
  })),
  fc.constantFrom('..', 'a/../b', '/abs', 'a//b', '', 'a/b/c/d/e', 'ks/\0').map((bad) => ({
    kind: 'unsafe dir',
    manifest: withField(physicalManifest(), ['dir'], bad),
    field: ['dir'],
  })),
  fc.tuple(fc.nat(2), fc.boolean()).map(([i, sameName]) => {
    const manifest = physicalManifest();
    const copy = { ...manifest.files[i]!, name: sameName ? manifest.files[i]!.name : 'another' };
    return {
      kind: sameName ? 'duplicate file entry' : 'duplicate destination',
      manifest: { ...manifest, files: [...manifest.files, copy] },
      field: ['files', manifest.files.length, sameName ? 'name' : 'path'],
    };
  }),
  fc.constant<Hostile>({
    kind: 'duplicate file entry',
    manifest: (() => {
      const manifest = logicalManifest();
      return { ...manifest, files: [...manifest.files, { ...manifest.files[0]!, name: 'other.csv' }] };
    })(),
    field: ['files', 1, 'part'],
  }),
  fc.constant<Hostile>({
    kind: 'duplicate table',
    manifest: (() => {
      const manifest = logicalManifest();
      return { ...manifest, tables: [...manifest.tables, manifest.tables[0]!] };
    })(),
    field: ['tables', 2, 'name'],
  }),
  fc
    .tuple(
      fc.constantFrom(
        ['formatVersion'],
        ['engine'],
        ['name'],
        ['dir'],
        ['position'],
        ['compression'],
        ['bytes', 'raw'],
        ['files'],
        ['files', 0],
        ['files', 0, 'base'],
        ['files', 0, 'sha256'],
      ) as fc.Arbitrary<FieldPath>,
      junk,
    )
    .filter(([field, bad]) => {
      // Junk of the same type can be a valid value; keep only the wrong types.
      const valid = field.reduce<unknown>(
        (v, k) => (v as Record<string | number, unknown>)[k],
        physicalManifest(),
      );
      return (
        bad !== undefined && typeof bad !== typeof valid && !(Array.isArray(valid) && Array.isArray(bad))
      );
    })
    .map(([field, bad]) => ({
      kind: 'wrong type',
      manifest: withField(physicalManifest(), field, bad),
      field,
    })),
);

const schemaRuns = runs(300, 5_000);

describe('MANIFEST schema under fuzzing', () => {
  it('refuses every hostile manifest with INVALID_MANIFEST naming the field it breaks', async () => {
    await checkProperty(
      'hostile MANIFEST (schema)',
      fc.property(hostileManifest, ({ manifest, field }) => {
        const result = parseStored(manifest);
        expect(result).toBeInstanceOf(ManifestError);
        const error = result as ManifestError;
        expect(error.code).toBe('INVALID_MANIFEST');
        expect(error.exitCode).toBe(5);
        // The message names the broken field (or, for a wrong type, a field on its branch).
        const named = [...error.message.matchAll(/(?:: |; )([A-Za-z]+(?:\[\d+\]|\.[A-Za-z0-9]+)*): /g)].map(
          (m) => m[1]!,
        );
        expect(
          named.some((label) => fieldLabel(field).startsWith(label) || label.startsWith(fieldLabel(field))),
          `${error.message} should name ${fieldLabel(field)}`,
        ).toBe(true);
        expect(error.message.length).toBeLessThan(2_000);
      }),
      { numRuns: schemaRuns, seed: 20261201 },
    );
  });

  it('answers any mutation of a valid manifest with a valid manifest or INVALID_MANIFEST, never another error', async () => {
    const valid: BackupManifest[] = [physicalManifest(), logicalManifest()];
    const arbitrary = fc
      .constantFrom(...valid)
      .chain((manifest) =>
        mutationOf(manifest).map((mutation) => ({ mutation, value: applyMutation(manifest, mutation) })),
      );
    await checkProperty(
      'mutated MANIFEST (schema)',
      fc.property(arbitrary, ({ value }) => {
        const result = parseStored(value);
        if (result instanceof ManifestError) {
          // Refused naming a field (a cross-reference such as files[0].table may name another one).
          expect(result.message).toMatch(/MANIFEST is (invalid: [^ ]+: |not JSON)/);
          expect(result.message.length).toBeLessThan(2_000);
        } else {
          checkAccepted(result);
        }
      }),
      { numRuns: schemaRuns, seed: 20261202 },
    );
  });

  it('answers arbitrary bytes and JSON with INVALID_MANIFEST', async () => {
    const arbitrary = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.json(),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString('utf8')),
    );
    await checkProperty(
      'junk MANIFEST text',
      fc.property(arbitrary, (text) => {
        expect(parseStored(text)).toBeInstanceOf(ManifestError);
      }),
      { numRuns: schemaRuns, seed: 20261203 },
    );
  });

  it('never resolves a relative path outside its base, whatever the path', async () => {
    const base = '/srv/mysql/data';
    const pathLike = fc
      .array(fc.oneof(safeSegment, fc.constantFrom('..', '.', '', '/', '\\', '\0', '~', '%2e%2e')), {
        maxLength: 8,
      })
      .map((parts) => parts.join(fc.sample(fc.constantFrom('/', ''), 1)[0]!));
    await checkProperty(
      'hostile relative path (resolveUnder)',
      fc.property(fc.oneof(pathLike, fc.string({ unit: 'binary' })), (relative) => {
        let target: string | undefined;
        try {
          target = resolveUnder(base, relative);
        } catch (error) {
          expect(error).toBeInstanceOf(ManifestError);
        }
        if (target !== undefined) expect(target.startsWith(`${base}/`)).toBe(true);
      }),
      { numRuns: runs(1_000, 20_000), seed: 20261204 },
    );
  });

  it('plans restores only into the base directories and the staging area', async () => {
    const layout = {
      datadir: '/srv/db/data',
      baseDirs: {
        data: '/srv/db/data',
        'innodb-data': '/srv/db/data',
        'innodb-log': '/srv/db/redo',
        'innodb-undo': '/srv/db/data',
      },
      systemTablespaces: new Set(['ibdata1']),
      ariaLogPath: '',
      notDatabases: new Set(['files']),
      logBases: ['/srv/db/data/mysql-bin'],
    };
    const area: RestoreArea = {
      holding: ['/srv/db/data.stepback-restore'],
      stagedRoot: (base) => `/srv/db/data.stepback-restore/staged/${base}`,
      heldDirectory: (dir) => `/srv/db/data.stepback-restore/held${dir}`,
    };
    const entry = fc.record({
      base: fc.constantFrom('data', 'innodb-data', 'innodb-log', 'innodb-undo'),
      path: fc.oneof(
        fc
          .array(
            fc.oneof(
              safeSegment,
              fc.constantFrom('shop', 'files', '#sql-1', 'ibdata1', 'ib_logfile0', 'undo001'),
            ),
            {
              minLength: 1,
              maxLength: 3,
            },
          )
          .map((s) => s.join('/')),
        hostilePath,
      ),
    });
    await checkProperty(
      'restore plan of fuzzed entries',
      fc.property(fc.array(entry, { minLength: 1, maxLength: 6 }), (entries) => {
        const manifest = physicalManifest({
          files: [
            { ...physicalManifest().files[0]! },
            ...entries.map((e, i) => ({
              ...physicalManifest().files[1]!,
              name: `f${i}`,
              base: e.base as 'data',
              path: e.path,
            })),
          ],
        });
        const parsed = parseStored(manifest);
        if (parsed instanceof ManifestError) return;
        try {
          const planned = planRestoreFiles(layout, area, parsed as PhysicalManifest);
          for (const plan of planned) {
            expect(plan.destination.startsWith(`${layout.baseDirs[plan.file.base]}/`)).toBe(true);
            expect(plan.staged.startsWith(`${area.stagedRoot(plan.file.base)}/`)).toBe(true);
          }
          expect(new Set(planned.map((p) => p.destination)).size).toBe(planned.length);
        } catch (error) {
          expect(error).toBeInstanceOf(ManifestError);
        }
      }),
      { numRuns: schemaRuns, seed: 20261205 },
    );
  });
});

describe('restoring hostile manifests through the CLI', () => {
  let target: TestInstance;
  let storageRoot: string;
  /** A directory beside the datadir that a hostile path aims at; it must stay as it is. */
  let canary: string;
  /** A directory outside the storage that links in the storage point to. */
  let outside: string;
  const secret = Buffer.from('not for a datadir\n');

  beforeAll(async () => {
    target = await createTestInstance({ name: 'faults-manifests' });
    await target.query('CREATE DATABASE shop');
    await target.query('CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(40)) ENGINE=InnoDB');
    await target.query("INSERT INTO shop.orders SELECT seq, CONCAT('order ', seq) FROM shop.seq_1_to_500");
    storageRoot = await tempDir('faults-storage');
    outside = await tempDir('faults-outside');
    canary = path.join(target.root, 'canary');
    await fs.mkdir(canary);
    await fs.writeFile(path.join(canary, 'secret'), secret);
  });

  afterAll(async () => {
    await target?.dispose();
  });

  async function observe() {
    const [{ n }] = await target.query<[{ n: string }]>('SELECT COUNT(*) AS n FROM shop.orders');
    return {
      rows: Number(n),
      state: await stateOf(target),
      checksums: await tableChecksums(target, 'shop'),
      tree: await treeOf(target.root),
      outside: await treeOf(outside),
    };
  }

  /** A backup directory with `manifest` (any JSON) and a stored file for each name it lists. */
  async function writeBackup(
    dir: string,
    name: string,
    manifest: unknown,
    contents: Record<string, Buffer> = {},
  ): Promise<void> {
    const at = path.join(storageRoot, dir, name);
    await fs.mkdir(at, { recursive: true });
    await fs.writeFile(path.join(at, MANIFEST_FILE), JSON.stringify(manifest) ?? 'null');
    const files = (manifest as { files?: unknown }).files;
    for (const file of Array.isArray(files) ? files : []) {
      const stored = (file as { name?: unknown })?.name;
      if (
        typeof stored === 'string' &&
        /^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/.test(stored) &&
        stored !== MANIFEST_FILE
      ) {
        await fs.writeFile(path.join(at, stored), contents[stored] ?? randomBytes(64));
      }
    }
  }

  /** A physical backup that would restore, stored uncompressed with true hashes. */
  function trueManifest(name: string, dir: string, files: { name: string; path: string; content: Buffer }[]) {
    return physicalManifest({
      name,
      dir,
      compression: 'none',
      position: '',
      bytes: { raw: 0, stored: 0 },
      files: files.map((file) => ({
        name: file.name,
        base: file.path === 'ibdata1' ? 'innodb-data' : 'data',
        path: file.path,
        rawSize: file.content.length,
        storedSize: file.content.length,
        sha256: sha(file.content),
      })),
    });
  }

  /** Restores `dir`@`name` and checks the refusal; returns what the case measured. */
  async function restoreRefused(fault: string, dir: string, name: string, codes: string[]) {
    const before = await observe();
    const run = await runStepback([
      'restore',
      '--defaults-file',
      target.cnf,
      '--storage',
      `file://${storageRoot}`,
      '--dir',
      dir,
      '--backup',
      name,
      '--delete-before-restore',
      '--json',
    ]);
    const after = await observe();
    const rowsLost = Math.max(0, before.rows - after.rows);
    const filesLeft =
      newPaths(before.tree, after.tree).length + newPaths(before.outside, after.outside).length;
    const error = (run.json as { error?: { code: string } } | undefined)?.error;
    const survived =
      run.code === 5 && codes.includes(String(error?.code)) && rowsLost === 0 && filesLeft === 0;
    recordFault({
      fault,
      cases: 1,
      survived: survived ? 1 : 0,
      rowsLost,
      filesLeft,
    });
    expect(run.code, `${fault}: ${run.stderr}`).toBe(5);
    expect(codes).toContain(error?.code);
    expect(after).toEqual(before);
  }

  it('refuses fuzzed hostile manifests with exit 5 before writing anything', async () => {
    const cases = fc.sample(hostileManifest, { numRuns: runs(3, 30), seed: 20261206 });
    for (const [index, { kind, manifest }] of cases.entries()) {
      const dir = `shop/fuzz${index}`;
      await writeBackup(dir, '2026-11-24.000000.fuzz', manifest);
      await restoreRefused(`hostile MANIFEST restored (fuzzed: ${kind})`, dir, '2026-11-24.000000.fuzz', [
        'INVALID_MANIFEST',
      ]);
    }
  });

  it('refuses hostile logical manifests in a multirestore with exit 5, creating nothing', async () => {
    const hostile: [string, unknown][] = [
      [
        'duplicate part',
        withField(logicalManifest(), ['files', 1], { ...logicalManifest().files[0]!, name: 'again.csv' }),
      ],
      ['duplicate table', withField(logicalManifest(), ['tables', 2], logicalManifest().tables[0])],
      ['huge number', withField(logicalManifest(), ['files', 0, 'rows'], 2 ** 64)],
      ['unsafe name', withField(logicalManifest(), ['files', 0, 'name'], '../../canary/pwned')],
    ];
    for (const [index, [kind, manifest]] of hostile.slice(0, runs(2, hostile.length)).entries()) {
      const dir = `shop/logical${index}`;
      await writeBackup(dir, '2026-11-24.000000.logical', manifest);
      const before = await observe();
      const run = await runStepback([
        'multirestore',
        '--defaults-file',
        target.cnf,
        '--storage',
        `file://${storageRoot}`,
        '--sources',
        `${dir}@2026-11-24.000000.logical`,
        '--database',
        'fuzzed',
        '--json',
      ]);
      const after = await observe();
      const created = await target.query("SHOW DATABASES LIKE 'fuzzed'");
      const error = (run.json as { error?: { code: string } } | undefined)?.error;
      const filesLeft =
        newPaths(before.tree, after.tree).length + newPaths(before.outside, after.outside).length;
      recordFault({
        fault: `hostile MANIFEST multirestored (${kind})`,
        cases: 1,
        survived:
          run.code === 5 && error?.code === 'INVALID_MANIFEST' && filesLeft === 0 && created.length === 0
            ? 1
            : 0,
        rowsLost: Math.max(0, before.rows - after.rows),
        filesLeft,
      });
      expect(run.code, `${kind}: ${run.stderr}`).toBe(5);
      expect(error?.code).toBe('INVALID_MANIFEST');
      expect(after).toEqual(before);
      expect(created).toEqual([]);
    }
  });

  it('refuses manifests whose paths aim at the canary beside the datadir, absolute or relative', async () => {
    const datadir = target.datadir;
    const aims = [
      path.relative(datadir, path.join(canary, 'pwned')),
      path.join(canary, 'pwned'),
      `shop/../${path.relative(datadir, canary)}/pwned`,
      'shop/\0/../../canary/pwned',
    ];
    for (const [index, aim] of aims.slice(0, runs(2, aims.length)).entries()) {
      const manifest = trueManifest('2026-11-24.000000.aim', `shop/aim${index}`, [
        { name: '0000', path: 'ibdata1', content: randomBytes(1024) },
        { name: '0001', path: aim, content: secret },
      ]);
      await writeBackup(`shop/aim${index}`, '2026-11-24.000000.aim', manifest);
      await restoreRefused(
        'hostile MANIFEST restored (path aimed outside the datadir)',
        `shop/aim${index}`,
        '2026-11-24.000000.aim',
        ['INVALID_MANIFEST'],
      );
      expect(await treeOf(canary)).toEqual(['secret']);
    }
  });

  it('refuses a stored file that is a link to a file outside the storage, even with its true hash', async () => {
    const name = '2026-11-24.000000.filelink';
    const ibdata = randomBytes(1024);
    const manifest = trueManifest(name, 'shop/filelink', [
      { name: '0000', path: 'ibdata1', content: ibdata },
      { name: '0001', path: 'shop/orders.ibd', content: secret },
    ]);
    await writeBackup('shop/filelink', name, manifest, { '0000': ibdata });
    const stored = path.join(storageRoot, 'shop/filelink', name, '0001');
    await fs.rm(stored);
    await fs.symlink(path.join(canary, 'secret'), stored);
    await restoreRefused('link in file storage, restored (stored file)', 'shop/filelink', name, [
      'SYMLINK_IN_STORAGE',
    ]);
  });

  it('refuses a MANIFEST, a backup directory or a shard directory that is a link', async () => {
    const name = '2026-11-24.000000.linked';
    const manifest = trueManifest(name, 'shop/x', [
      { name: '0000', path: 'ibdata1', content: randomBytes(1024) },
    ]);
    // The real backup lives outside the storage; links in the storage lead to it.
    const elsewhere = path.join(outside, 'shard');
    await fs.mkdir(path.join(elsewhere, name), { recursive: true });
    await fs.writeFile(path.join(elsewhere, name, MANIFEST_FILE), JSON.stringify(manifest));
    await fs.writeFile(path.join(elsewhere, name, '0000'), randomBytes(1024));

    await fs.mkdir(path.join(storageRoot, 'shop/manifestlink', name), { recursive: true });
    await fs.symlink(
      path.join(elsewhere, name, MANIFEST_FILE),
      path.join(storageRoot, 'shop/manifestlink', name, MANIFEST_FILE),
    );
    await restoreRefused('link in file storage, restored (MANIFEST)', 'shop/manifestlink', name, [
      'SYMLINK_IN_STORAGE',
    ]);

    await fs.mkdir(path.join(storageRoot, 'shop/backuplink'), { recursive: true });
    await fs.symlink(path.join(elsewhere, name), path.join(storageRoot, 'shop/backuplink', name));
    await restoreRefused('link in file storage, restored (backup directory)', 'shop/backuplink', name, [
      'SYMLINK_IN_STORAGE',
    ]);

    await fs.symlink(elsewhere, path.join(storageRoot, 'shop/shardlink'));
    await restoreRefused('link in file storage, restored (shard directory)', 'shop/shardlink', name, [
      'SYMLINK_IN_STORAGE',
    ]);
  });
});
