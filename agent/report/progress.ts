import { formatBytes, formatCount, formatSeconds } from './format.ts';
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

/**
 * Whether an update is its phase's last: every total it gives (bytes, items) is reached. Rows are
 * not counted: their total is the server's estimate, which the count may never meet exactly.
 */
export function progressFinished(update: Progress): boolean {
  const bytes = update.bytesTotal === undefined || update.bytesDone === update.bytesTotal;
  const items = update.itemsTotal === undefined || update.itemsDone === update.itemsTotal;
  return (update.bytesTotal !== undefined || update.itemsTotal !== undefined) && bytes && items;
}

/**
 * A line cut to a terminal's width, leaving its last column free (a character written there wraps
 * on some terminals). A terminal that reports no width (0, or none) gets the whole line.
 */
export function fitToTerminal(line: string, columns: number | undefined): string {
  return columns !== undefined && columns > 1 ? line.slice(0, columns - 1) : line;
}

/**
 * `copying files 1.2 GiB / 2.6 GiB (46%) 120 MiB/s ETA 12s`; a phase's last update says it
 * finished, and in how long: `copying files finished in 21.7s: 2.6 GiB 120 MiB/s [207/207]`.
 */
export function describeProgress(
  update: Progress,
  seconds: number,
  finished = progressFinished(update),
): string {
  const parts = [finished ? `${update.phase} finished in ${formatSeconds(seconds)}:` : update.phase];
  if (update.bytesDone !== undefined) {
    const rate = seconds > 0 ? update.bytesDone / seconds : 0;
    if (finished) {
      parts.push(formatBytes(update.bytesDone));
      if (rate > 0) parts.push(`${formatBytes(rate)}/s`);
    } else if (update.bytesTotal) {
      const share = Math.min(100, (update.bytesDone / update.bytesTotal) * 100);
      parts.push(
        `${formatBytes(update.bytesDone)} / ${formatBytes(update.bytesTotal)} (${share.toFixed(0)}%)`,
      );
      if (rate > 0) {
        parts.push(
          `${formatBytes(rate)}/s`,
          `ETA ${formatSeconds((update.bytesTotal - update.bytesDone) / rate)}`,
        );
      }
    } else {
      parts.push(formatBytes(update.bytesDone));
      if (rate > 0) parts.push(`${formatBytes(rate)}/s`);
    }
  }
  if (update.rowsDone !== undefined) {
    const rate = seconds > 0 ? update.rowsDone / seconds : 0;
    parts.push(
      `${formatCount(update.rowsDone)}${update.rowsTotal && !finished ? ` / ${formatCount(update.rowsTotal)}` : ''} rows`,
      ...(rate > 0 ? [`${formatCount(Math.round(rate))} rows/s`] : []),
    );
  }
  if (update.itemsTotal !== undefined) parts.push(`[${update.itemsDone ?? 0}/${update.itemsTotal}]`);
  return parts.join(' ');
}
