import path from 'node:path';
import { projectRoot, stepbackProgramPath } from '../context.ts';
import type { Comparison, Contender, Sample } from '../harness.ts';
import { median, timed } from '../measure.ts';

/** Starts per sample: one start lasts a tenth of a second, so a sample is the median of several. */
const startsPerSample = 5;

async function starts(argv: () => string[]): Promise<Sample> {
  const seconds: number[] = [];
  let peakRssMb = 0;
  for (let i = 0; i < startsPerSample; i++) {
    const run = await timed(argv());
    seconds.push(run.seconds);
    peakRssMb = Math.max(peakRssMb, run.peakRssMb ?? 0);
  }
  return { seconds: median(seconds), ...(peakRssMb ? { peakRssMb } : {}) };
}

/**
 * `stepback --help` from the agent bundle the DB hosts run and through bin/ from the repository
 * (TypeScript stripped by Node at every start), against Node starting and doing nothing.
 */
export function startup(): Comparison {
  const contender = (name: string, role: Contender['role'], argv: () => string[]): Contender => ({
    name,
    role,
    run: () => starts(argv),
  });
  return {
    name: 'agent start-up',
    rawBytes: 0,
    rows: 0,
    contenders: [
      contender('stepback --help (agent bundle)', 'stepback', () => [
        process.execPath,
        stepbackProgramPath(),
        '--help',
      ]),
      contender('stepback --help through bin/ (TypeScript sources)', 'peer', () => [
        process.execPath,
        path.join(projectRoot, 'bin', 'stepback.js'),
        '--help',
      ]),
      contender('node -e 0', 'limit', () => [process.execPath, '-e', '0']),
    ],
  };
}
