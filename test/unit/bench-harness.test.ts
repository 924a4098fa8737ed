import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../bench/context.ts';
import { type Contender, runComparison, type Sample } from '../../bench/harness.ts';
import { renderChart, renderResults } from '../../bench/report.ts';

/** A contender whose runs return the given samples in turn, recording when it ran. */
function scripted(name: string, role: Contender['role'], samples: Sample[], calls: string[]): Contender {
  let next = 0;
  return {
    name,
    role,
    run: async () => {
      calls.push(name);
      return samples[next++]!;
    },
  };
}

describe('bench harness', () => {
  it('alternates contenders round by round and reports medians, ranges, ratios and phases', async () => {
    const calls: string[] = [];
    const result = await runComparison(
      {
        name: 'physical backup',
        rawBytes: 100 * 1024 * 1024,
        rows: 1000,
        contenders: [
          scripted(
            'stepback',
            'stepback',
            [
              { seconds: 2, phases: { copy: 1 }, peakRssMb: 100 },
              { seconds: 4, phases: { copy: 3 }, peakRssMb: 120 },
              { seconds: 3, phases: { copy: 2 }, peakRssMb: 110 },
            ],
            calls,
          ),
          scripted('peer', 'peer', [{ seconds: 6 }, { seconds: 9 }, { seconds: 7.5 }], calls),
          scripted('limit', 'limit', [{ seconds: 1.5 }, { seconds: 1.5 }, { seconds: 1.5 }], calls),
        ],
      },
      3,
      () => {},
    );
    // Each round starts one further along, so no tool always runs first (or right after another).
    expect(calls).toEqual([
      'stepback',
      'peer',
      'limit',
      'peer',
      'limit',
      'stepback',
      'limit',
      'stepback',
      'peer',
    ]);
    const [stepback, peer, limit] = result.contenders;
    expect(stepback).toMatchObject({
      seconds: { median: 3, min: 2, max: 4, samples: [2, 4, 3] },
      ratioToStepback: 1,
      mbPerSecond: 100 / 3,
      rowsPerSecond: 1000 / 3,
      peakRssMb: 120,
      phases: { copy: 2 },
    });
    expect(peer).toMatchObject({ seconds: { median: 7.5, min: 6, max: 9 }, ratioToStepback: 2.5 });
    expect(limit).toMatchObject({ seconds: { median: 1.5 }, ratioToStepback: 0.5 });

    const table = renderResults([result]);
    expect(table).toContain('2.50×');
    expect(table).toContain('limit (limit)');
    expect(table).toContain('copy 2.00 s');
    const chart = renderChart([result], 'title');
    expect(chart.match(/<rect x=/g)).toHaveLength(3);
    expect(chart).toContain('0.50×');
  });

  it('reports a missing tool and a failing one as skipped, with the reason, and keeps the others', async () => {
    const calls: string[] = [];
    const result = await runComparison(
      {
        name: 'snapshot',
        rawBytes: 1,
        rows: 1,
        contenders: [
          scripted('stepback', 'stepback', [{ seconds: 1 }, { seconds: 1 }], calls),
          { ...scripted('absent', 'peer', [], calls), missing: async () => 'absent not installed' },
          {
            name: 'broken',
            role: 'peer',
            run: async () => {
              throw new Error('exited with 1\nmore detail');
            },
          },
        ],
      },
      2,
      () => {},
    );
    expect(calls).toEqual(['stepback', 'stepback']);
    expect(result.contenders.map((c) => [c.name, c.skipped])).toEqual([
      ['stepback', undefined],
      ['absent', 'absent not installed'],
      ['broken', 'failed: exited with 1'],
    ]);
    expect(renderResults([result])).toContain('absent not installed');
  });
});

describe('bench README', () => {
  const readme = readFileSync(path.join(projectRoot, 'bench', 'README.md'), 'utf8');
  const runner = readFileSync(path.join(projectRoot, 'bench', 'run.ts'), 'utf8');
  const comparisons = [...runner.matchAll(/^ {4}\['(\w+)', \(\) =>/gm)].map((m) => m[1]);
  const usage = /const usage = `([^`]*)`/.exec(runner)![1]!;

  it('shows only flags and comparison names the bench takes', () => {
    const commands = readme.split('\n').filter((line) => line.startsWith('npm run bench'));
    expect(commands.length).toBeGreaterThan(2);
    expect(comparisons).toHaveLength(12);
    for (const command of commands) {
      const args = command.split('#')[0]!.trim().split(/\s+/).slice(4);
      for (const [index, arg] of args.entries()) {
        if (!arg.startsWith('--')) continue;
        expect(usage, command).toContain(`${arg} `);
        if (arg === '--only')
          for (const name of args[index + 1]!.split(',')) expect(comparisons).toContain(name);
      }
    }
  });

  it('names every comparison --only takes', () => {
    const listed = /`--only` takes any of ([^.]*)\./s.exec(readme)![1]!;
    expect([...listed.matchAll(/`(\w+)`/g)].map((m) => m[1])).toEqual(comparisons);
  });
});
