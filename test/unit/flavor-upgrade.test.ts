import { describe, expect, it } from 'vitest';
import {
  mariadbFlavor,
  mysqlFlavor,
  resetBinaryLogsStatement,
  sameRelease,
} from '../../agent/mysql/flavor.ts';

describe('when a restored datadir needs the upgrade tool', () => {
  it('compares releases by their numbers, whatever the suffix', () => {
    expect(sameRelease('10.11.19-MariaDB-0+deb12u1-log', '10.11.19')).toBe(true);
    expect(sameRelease('10.11.19', '10.11.18')).toBe(false);
    expect(sameRelease('10.11.19', '11.4.19')).toBe(false);
  });

  it('MariaDB: only when the backup comes from another release', () => {
    expect(mariadbFlavor.needsUpgradeTool('10.11.19', '10.11.19-MariaDB-0+deb12u1-log')).toBe(false);
    expect(mariadbFlavor.needsUpgradeTool('10.11.19', '10.11.6-MariaDB')).toBe(true);
    expect(mariadbFlavor.needsUpgradeTool('11.4.2', '10.11.19-MariaDB')).toBe(true);
  });

  it('MySQL: never from 8.0.16 on (it upgrades itself), else on a release change', () => {
    expect(mysqlFlavor.needsUpgradeTool('8.0.36', '5.7.44-log')).toBe(false);
    expect(mysqlFlavor.needsUpgradeTool('8.4.0', '8.0.36')).toBe(false);
    expect(mysqlFlavor.needsUpgradeTool('8.0.15', '5.7.44-log')).toBe(true);
    expect(mysqlFlavor.needsUpgradeTool('5.7.44', '5.7.44-log')).toBe(false);
  });
});

describe('the statement that empties MySQL binary logs before a restored position is set', () => {
  it('is RESET MASTER up to 8.1 and RESET BINARY LOGS AND GTIDS from 8.2 (8.4 and 9.x have no RESET MASTER)', () => {
    expect(resetBinaryLogsStatement('8.0.36')).toBe('RESET MASTER');
    expect(resetBinaryLogsStatement('8.1.0')).toBe('RESET MASTER');
    expect(resetBinaryLogsStatement('8.2.0')).toBe('RESET BINARY LOGS AND GTIDS');
    expect(resetBinaryLogsStatement('8.4.3')).toBe('RESET BINARY LOGS AND GTIDS');
    expect(resetBinaryLogsStatement('9.7.4-2')).toBe('RESET BINARY LOGS AND GTIDS');
  });
});
