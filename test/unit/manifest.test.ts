import { describe, expect, it } from 'vitest';
import { ManifestError } from '../../core/errors.ts';
import { parseManifest, serializeManifest } from '../../core/manifest.ts';
import { resolveUnder } from '../../core/paths.ts';
import { logicalManifest, physicalManifest } from '../support/manifests.ts';

function parse(value: unknown) {
  return parseManifest(JSON.stringify(value), 'commerce/-80/b1');
}

function refusal(value: unknown): string {
  try {
    parse(value);
  } catch (error) {
    expect(error).toBeInstanceOf(ManifestError);
    return (error as Error).message;
  }
  throw new Error('the manifest was accepted');
}

describe('parseManifest', () => {
  it('accepts a physical manifest and round-trips it through serializeManifest', () => {
    const manifest = physicalManifest();
    expect(parseManifest(serializeManifest(manifest))).toEqual(manifest);
  });

  it('accepts a logical manifest with tables, views and a key range', () => {
    const manifest = logicalManifest();
    expect(parse(manifest)).toEqual(manifest);
  });

  it.each([
    ['../../etc/passwd', '".." segment'],
    ['/etc/passwd', 'is absolute'],
    ['shop/../../x', '".." segment'],
    ['shop//x', 'empty segment'],
    ['shop\\..\\x', 'backslash'],
    ['a\0b', 'NUL'],
    ['', 'is empty'],
  ])('refuses a file whose path %j escapes its base, naming the entry', (badPath, reason) => {
    const manifest = physicalManifest();
    manifest.files[1] = { ...manifest.files[1]!, path: badPath };
    const message = refusal(manifest);
    expect(message).toContain('files[1].path');
    expect(message).toContain(reason);
    expect(message).toContain('commerce/-80/b1');
  });

  it('refuses an unknown destination base', () => {
    const manifest = physicalManifest();
    expect(refusal({ ...manifest, files: [{ ...manifest.files[0], base: 'root' }] })).toContain(
      'files[0].base',
    );
  });

  it('refuses stored names that could leave the backup directory', () => {
    const manifest = physicalManifest();
    expect(refusal({ ...manifest, files: [{ ...manifest.files[0], name: '../MANIFEST' }] })).toContain(
      'files[0].name',
    );
  });

  it('refuses duplicate names and destinations', () => {
    const manifest = physicalManifest();
    const [first] = manifest.files;
    expect(refusal({ ...manifest, files: [first, { ...first, path: 'other' }] })).toContain('duplicate name');
    expect(refusal({ ...manifest, files: [first, { ...first, name: 'other' }] })).toContain('duplicate path');
  });

  it('refuses a position that is not a GTID set of its flavor (it reaches SQL)', () => {
    expect(refusal(physicalManifest({ position: "0-1-1'; DROP DATABASE x; --" }))).toContain('position');
    expect(refusal(physicalManifest({ position: '3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5' }))).toContain(
      'not a mariadb GTID set',
    );
    expect(
      parse(physicalManifest({ flavor: 'mysql', position: '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7' }))
        .position,
    ).toBe('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7');
  });

  it('refuses text that is not JSON, and a missing field, saying which', () => {
    expect(() => parseManifest('{"formatVersion":', 'x')).toThrow(/not JSON/);
    const { host: _host, ...withoutHost } = physicalManifest();
    expect(refusal(withoutHost)).toContain('host');
  });

  it('refuses a logical file for a table the schema does not have, and a non-CREATE statement', () => {
    const manifest = logicalManifest();
    expect(refusal({ ...manifest, files: [{ ...manifest.files[0], table: 'users' }] })).toContain(
      'unknown table "users"',
    );
    const tables = [{ ...manifest.tables[0], create: 'DROP TABLE `orders`' }];
    expect(refusal({ ...manifest, tables })).toContain('CREATE TABLE');
  });

  it('accepts triggers, routines and events with their session settings, and refuses what cannot be one', () => {
    const trigger = {
      kind: 'trigger' as const,
      name: 'orders_bi',
      table: 'orders',
      create: 'CREATE TRIGGER `orders_bi` BEFORE INSERT ON `orders` FOR EACH ROW SET @a = 1',
      sqlMode: 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION',
      characterSetClient: 'utf8mb4',
      collationConnection: 'utf8mb4_general_ci',
    };
    const manifest = logicalManifest({
      storedPrograms: [trigger],
      charset: 'latin1',
      collation: 'latin1_german1_ci',
    });
    expect(parseManifest(serializeManifest(manifest))).toEqual(manifest);
    expect(refusal({ ...manifest, storedPrograms: [trigger, trigger] })).toContain(
      'duplicate trigger "orders_bi"',
    );
    expect(refusal({ ...manifest, storedPrograms: [{ ...trigger, table: 'users' }] })).toContain(
      'unknown table "users"',
    );
    expect(refusal({ ...manifest, storedPrograms: [{ ...trigger, kind: 'event' }] })).toContain(
      'names its table',
    );
    expect(refusal({ ...manifest, storedPrograms: [{ ...trigger, sqlMode: "ANSI'; DROP" }] })).toContain(
      'sqlMode',
    );
    expect(refusal({ ...manifest, charset: 'utf8mb4; DROP' })).toContain('charset');
  });

  it('refuses a newer format version', () => {
    expect(refusal({ ...physicalManifest(), formatVersion: 2 })).toContain('formatVersion');
  });
});

describe('resolveUnder', () => {
  it('joins a safe relative path under its base', () => {
    expect(resolveUnder('/var/lib/mysql', 'shop/orders.ibd')).toBe('/var/lib/mysql/shop/orders.ibd');
  });

  it('refuses what escapes even when the schema was bypassed', () => {
    expect(() => resolveUnder('/var/lib/mysql', '../x')).toThrow(ManifestError);
    expect(() => resolveUnder('/var/lib/mysql', '/x')).toThrow(/absolute/);
  });
});
