import { median } from './measure.ts';

/** One timed run of a contender. */
export interface Sample {
  seconds: number;
  /** stepback's own phases, from its --json result: its whole operation without CLI start-up, the copy… */
  phases?: Record<string, number> | undefined;
  peakRssMb?: number | undefined;
  storedBytes?: number | undefined;
}

/** stepback, a peer tool, or the limit the disk and codec set. */
export type Role = 'stepback' | 'peer' | 'limit';

export interface Contender {
  name: string;
  role: Role;
  /** Why it cannot run on this machine (reported as skipped), or undefined. */
  missing?: () => Promise<string | undefined>;
  /** Untimed set-up before each run (an empty target, a stopped server). */
  before?: () => Promise<void>;
  run: () => Promise<Sample>;
  /** Untimed clean-up after each run. */
  after?: () => Promise<void>;
}

export interface Comparison {
  name: string;
  /** Bytes of data the operation moves (for MB/s). */
  rawBytes: number;
  rows: number;
  contenders: Contender[];
  setup?: () => Promise<void>;
  teardown?: () => Promise<void>;
}

export interface ContenderResult {
  name: string;
  role: Role;
  skipped?: string;
  seconds?: { median: number; min: number; max: number; samples: number[] };
  mbPerSecond?: number;
  rowsPerSecond?: number;
  storedBytes?: number;
  peakRssMb?: number;
  /** Median seconds of each phase stepback reported. */
  phases?: Record<string, number>;
  /** Median seconds over stepback's median seconds: above 1 means slower than stepback. */
  ratioToStepback?: number;
}

export interface ComparisonResult {
  name: string;
  rawBytes: number;
  rows: number;
  contenders: ContenderResult[];
}

/**
 * Runs every contender of a comparison `rounds` times, alternating them within each round (so a
 * noisy moment hits all of them), and reports median, min and max with ratios to stepback.
 */
export async function runComparison(
  comparison: Comparison,
  rounds: number,
  log: (line: string) => void,
): Promise<ComparisonResult> {
  const skipped = new Map<string, string>();
  for (const contender of comparison.contenders) {
    const reason = await contender.missing?.();
    if (reason) {
      skipped.set(contender.name, reason);
      log(`  ${comparison.name}: skipping ${contender.name}: ${reason}`);
    }
  }
  const samples = new Map<string, Sample[]>();
  await comparison.setup?.();
  try {
    for (let round = 0; round < rounds; round++) {
      // Rotate the order each round.
      const order = comparison.contenders.map(
        (_, i) => comparison.contenders[(i + round) % comparison.contenders.length]!,
      );
      for (const contender of order) {
        if (skipped.has(contender.name)) continue;
        try {
          await contender.before?.();
          let sample: Sample;
          try {
            sample = await contender.run();
          } finally {
            await contender.after?.();
          }
          samples.set(contender.name, [...(samples.get(contender.name) ?? []), sample]);
          log(`  ${comparison.name} round ${round + 1}: ${contender.name} ${sample.seconds.toFixed(2)}s`);
        } catch (error) {
          skipped.set(contender.name, `failed: ${(error as Error).message.split('\n')[0]}`);
          log(`  ${comparison.name}: ${contender.name} failed: ${(error as Error).message}`);
        }
      }
    }
  } finally {
    await comparison.teardown?.();
  }
  const results: ContenderResult[] = comparison.contenders.map((contender) => {
    const runs = samples.get(contender.name) ?? [];
    const reason = skipped.get(contender.name);
    if (reason || runs.length === 0)
      return { name: contender.name, role: contender.role, skipped: reason ?? 'no runs' };
    const seconds = runs.map((s) => s.seconds);
    const mid = median(seconds);
    const stored = runs.map((s) => s.storedBytes).filter((b): b is number => b !== undefined);
    const rss = runs.map((s) => s.peakRssMb).filter((b): b is number => b !== undefined);
    const phases: Record<string, number> = {};
    for (const phase of new Set(runs.flatMap((s) => Object.keys(s.phases ?? {})))) {
      const values = runs.map((s) => s.phases?.[phase]).filter((v): v is number => v !== undefined);
      phases[phase] = median(values);
    }
    return {
      name: contender.name,
      role: contender.role,
      seconds: { median: mid, min: Math.min(...seconds), max: Math.max(...seconds), samples: seconds },
      // A comparison that moves no data (start-up) has no throughput.
      ...(comparison.rawBytes ? { mbPerSecond: comparison.rawBytes / 1024 / 1024 / mid } : {}),
      ...(comparison.rows ? { rowsPerSecond: comparison.rows / mid } : {}),
      ...(stored.length ? { storedBytes: median(stored) } : {}),
      ...(rss.length ? { peakRssMb: Math.max(...rss) } : {}),
      ...(Object.keys(phases).length ? { phases } : {}),
    };
  });
  const stepback = results.find((r) => r.role === 'stepback' && r.seconds);
  for (const result of results) {
    if (stepback?.seconds && result.seconds)
      result.ratioToStepback = result.seconds.median / stepback.seconds.median;
  }
  return { name: comparison.name, rawBytes: comparison.rawBytes, rows: comparison.rows, contenders: results };
}
