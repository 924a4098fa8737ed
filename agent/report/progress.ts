import type { Progress } from './reporter.ts';

/**
 * Running totals of a byte-moving phase (bytes and files done out of known totals), handed to a
 * reporter on every change; the reporter decides how often to draw.
 */
export class ByteProgress {
  readonly #phase: string;
  readonly #bytesTotal: number;
  readonly #itemsTotal: number;
  readonly #report: (update: Progress) => void;
  #bytesDone = 0;
  #itemsDone = 0;

  constructor(phase: string, totals: { bytes: number; items: number }, report: (update: Progress) => void) {
    this.#phase = phase;
    this.#bytesTotal = totals.bytes;
    this.#itemsTotal = totals.items;
    this.#report = report;
  }

  /** Adds raw bytes (negative when a file starts over). */
  addBytes = (delta: number): void => {
    this.#bytesDone += delta;
    this.#emit();
  };

  /** Counts a finished item; reported with the next bytes, or at once when it is the last. */
  itemDone = (): void => {
    this.#itemsDone++;
    if (this.#itemsDone === this.#itemsTotal) this.#emit();
  };

  start(): void {
    this.#emit();
  }

  #emit(): void {
    this.#report({
      phase: this.#phase,
      bytesDone: this.#bytesDone,
      bytesTotal: this.#bytesTotal,
      itemsDone: this.#itemsDone,
      itemsTotal: this.#itemsTotal,
    });
  }
}
