import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoDatabase, loadSampleData } from '../../local/demo/sample-data.ts';
import { createTestInstance, type TestInstance } from '../support/mariadb.ts';

let instance: TestInstance;

beforeAll(async () => {
  instance = await createTestInstance({ name: 'sample-data' });
});

afterAll(async () => {
  await instance?.dispose();
});

describe('demo sample data', () => {
  it('loads the requested number of rows with the awkward values dump formats get wrong', async () => {
    const connection = await instance.connect();
    try {
      const { tables } = await loadSampleData(connection, 2000);
      expect(Object.values(tables).reduce((a, b) => a + b, 0)).toBe(2000);
    } finally {
      await connection.end();
    }
    const [counts] = await instance.query<[Record<string, string>]>(
      `SELECT (SELECT COUNT(*) FROM ${demoDatabase}.customer) AS customers, (SELECT COUNT(*) FROM ${demoDatabase}.corder) AS orders,
              (SELECT COUNT(*) FROM ${demoDatabase}.audit_log) AS log`,
    );
    expect(counts).toEqual({ customers: '400', orders: '1000', log: '600' });
    const [awkward] = await instance.query<[Record<string, string>]>(
      `SELECT SUM(LOCATE(X'00', avatar) > 0) AS nul, SUM(email IS NULL) AS nulls, SUM(email = '\\\\N') AS backslash_n,
              SUM(name LIKE '%🦊%') AS emoji, SUM(avatar LIKE '%"%') AS quotes, COUNT(DISTINCT keyspace_id) AS ids,
              SUM(keyspace_id >= 9223372036854775808) AS high_ids
       FROM ${demoDatabase}.customer`,
    );
    for (const key of ['nul', 'nulls', 'backslash_n', 'emoji', 'quotes', 'high_ids'])
      expect(Number(awkward[key])).toBeGreaterThan(0);
    expect(awkward.ids).toBe('400');
    expect(await instance.query(`SELECT COUNT(*) AS n FROM ${demoDatabase}.big_spender`)).toHaveLength(1);
  });
});
