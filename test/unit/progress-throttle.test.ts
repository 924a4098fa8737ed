import { describe, expect, it } from 'vitest';
import type { Progress } from '../../agent/report/reporter.ts';
import { throttleProgress } from '../../agent/report/throttle.ts';

describe('throttleProgress', () => {
  it('passes a new phase and a finished one at once and the rest at most every interval', () => {
    let time = 0;
    const seen: Progress[] = [];
    const forward = throttleProgress(
      (update) => seen.push(update),
      500,
      () => time,
    );
    const update = (phase: string, bytesDone: number) => forward({ phase, bytesDone, bytesTotal: 100 });
    update('copying files', 0);
    time = 100;
    update('copying files', 10);
    time = 499;
    update('copying files', 20);
    time = 600;
    update('copying files', 30);
    time = 650;
    update('copying files', 100);
    update('uploading manifest', 0);
    expect(seen.map((u) => [u.phase, u.bytesDone])).toEqual([
      ['copying files', 0],
      ['copying files', 30],
      ['copying files', 100],
      ['uploading manifest', 0],
    ]);
  });
});
