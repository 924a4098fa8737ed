import { describe, expect, it } from 'vitest';
import { splitSecondaryIndexes } from '../../agent/engines/logical/multirestore/indexes.ts';

const create = [
  'CREATE TABLE `big` (',
  '  `id` int(11) NOT NULL,',
  '  `k` int(11) NOT NULL,',
  "  `c` varchar(40) DEFAULT 'a, b (c)',",
  '  PRIMARY KEY (`id`),',
  '  UNIQUE KEY `c_u` (`c`),',
  '  KEY `k_1` (`k`),',
  "  KEY `k_c` (`k`,`c`(10)) COMMENT 'two, columns'",
  ') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4',
].join('\n');

describe('splitSecondaryIndexes', () => {
  it('takes the plain secondary indexes out of an InnoDB table, keeping the primary and unique keys', () => {
    const split = splitSecondaryIndexes(
      { create, autoIncrement: undefined, engine: 'InnoDB' },
      new Set(),
      'big',
    );
    expect(split?.indexes).toEqual([
      { name: 'k_1', definition: 'KEY `k_1` (`k`)' },
      { name: 'k_c', definition: "KEY `k_c` (`k`,`c`(10)) COMMENT 'two, columns'" },
    ]);
    expect(split?.create).toBe(
      [
        'CREATE TABLE `big` (',
        '  `id` int(11) NOT NULL,',
        '  `k` int(11) NOT NULL,',
        "  `c` varchar(40) DEFAULT 'a, b (c)',",
        '  PRIMARY KEY (`id`),',
        '  UNIQUE KEY `c_u` (`c`)',
        ') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4',
      ].join('\n'),
    );
  });

  it('keeps the indexes of other engines, of tables with a foreign key and of tables one references', () => {
    const table = { create, autoIncrement: undefined, engine: 'InnoDB' };
    expect(splitSecondaryIndexes({ ...table, engine: 'MyISAM' }, new Set(), 'big')).toBeUndefined();
    expect(splitSecondaryIndexes(table, new Set(['big']), 'big')).toBeUndefined();
    const withKey = create.replace(
      "COMMENT 'two, columns'",
      "COMMENT 'two, columns',\n  CONSTRAINT `f` FOREIGN KEY (`k`) REFERENCES `other` (`id`)",
    );
    expect(splitSecondaryIndexes({ ...table, create: withKey }, new Set(), 'big')).toBeUndefined();
  });
});
