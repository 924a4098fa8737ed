import { describe, expect, it } from 'vitest';
import { renderMultirestore } from '../../agent/cli/commands/multirestore.ts';

describe('renderMultirestore', () => {
  it('counts the stored programs and names what the operator must know: replaced definers, late indexes', () => {
    const text = renderMultirestore({
      database: 'shop',
      sources: [{ dir: 'shop/0', name: '2026-12-01.000000.db1', keyRange: '-', position: '0-1-5', rows: 10 }],
      tables: 3,
      views: 1,
      indexesAfterLoad: ['big'],
      storedPrograms: { triggers: 3, procedures: 2, functions: 1, events: 1, skipped: 0 },
      definersReplaced: [{ object: 'view "big_orders"', definer: "'app'@'%'" }],
      files: { total: 3, loaded: 3, alreadyLoaded: 0 },
      rows: 10,
      bytes: 100,
      resumed: false,
      checkpoints: false,
      seconds: 1.5,
    });
    expect(text).toContain('shop: 3 tables, 1 views, 3 triggers, 2 procedures, 1 functions, 1 events;');
    expect(text).toContain('secondary indexes built after the load: big');
    expect(text).toContain(
      `view "big_orders" is defined by the loading user (its DEFINER 'app'@'%' does not exist here)`,
    );
  });
});
