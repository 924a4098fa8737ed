import type { LogicalManifest, PhysicalManifest } from '../../core/manifest.ts';

const sha = (digit: string) => digit.repeat(64);

/** A valid physical manifest; tests override what they examine. */
export function physicalManifest(overrides: Partial<PhysicalManifest> = {}): PhysicalManifest {
  return {
    formatVersion: 1,
    engine: 'physical',
    name: '2026-11-24.101500.db1',
    dir: 'commerce/-80',
    keyspace: 'commerce',
    shard: '-80',
    host: 'db1',
    startedAt: '2026-11-24T10:15:00.000Z',
    finishedAt: '2026-11-24T10:16:00.000Z',
    durationSeconds: 60,
    flavor: 'mariadb',
    serverVersion: '10.11.19-MariaDB',
    serverId: 1,
    role: 'replica',
    position: '0-1-100',
    purged: '',
    compression: 'zstd',
    bytes: { raw: 300, stored: 120 },
    files: [
      {
        name: '0000.zst',
        base: 'innodb-data',
        path: 'ibdata1',
        rawSize: 100,
        storedSize: 40,
        sha256: sha('a'),
      },
      {
        name: '0001.zst',
        base: 'data',
        path: 'shop/orders.ibd',
        rawSize: 100,
        storedSize: 40,
        sha256: sha('b'),
      },
      {
        name: '0002.zst',
        base: 'innodb-log',
        path: 'ib_logfile0',
        rawSize: 100,
        storedSize: 40,
        sha256: sha('c'),
      },
    ],
    ...overrides,
  };
}

/** A valid logical (snapshot) manifest. */
export function logicalManifest(overrides: Partial<LogicalManifest> = {}): LogicalManifest {
  return {
    ...physicalManifest(),
    engine: 'logical',
    database: 'shop',
    keyRange: '-80',
    keyColumn: 'keyspace_id',
    keyType: 'uint64',
    tables: [
      {
        name: 'orders',
        type: 'table',
        create:
          'CREATE TABLE `orders` (`id` bigint NOT NULL, `keyspace_id` bigint unsigned, PRIMARY KEY (`id`))',
        columns: [
          { name: 'id', type: 'bigint(20)', generated: false },
          { name: 'keyspace_id', type: 'bigint(20) unsigned', generated: false },
        ],
        primaryKey: ['id'],
        rows: 10,
      },
      { name: 'recent', type: 'view', create: 'CREATE ALGORITHM=UNDEFINED VIEW `recent` AS select 1' },
    ],
    files: [
      {
        name: 'orders.0.csv.zst',
        table: 'orders',
        part: 0,
        rows: 10,
        rawSize: 100,
        storedSize: 50,
        sha256: sha('d'),
      },
    ],
    ...overrides,
  };
}
