import { StepbackError } from '../errors.ts';
import { type FlavorName, isValidGtidSet } from '../gtid.ts';

/**
 * GTID sets as the binlog archive compares them: what a file holds before and after, whether a
 * backup's position already holds a transaction, which transactions lie between two files.
 *
 * MariaDB keeps, per replication domain, one sequence that every server of the domain advances;
 * its binlog state is the last GTID per (domain, server). A GTID `d-s-n` is held by a state when the
 * state has reached sequence n in domain d. MySQL sets are exact: a set of intervals per server uuid.
 */
export interface GtidSet {
  readonly flavor: FlavorName;
  /** Whether the one GTID `gtid` (`0-1-5`, `uuid:5`) is in the set. */
  has(gtid: string): boolean;
  /** Whether every GTID of `other` is in this set. */
  covers(other: GtidSet): boolean;
  /** A new set with `gtid` added. */
  with(gtid: string): GtidSet;
  /** What of `other` this set does not hold, as text ('' when nothing). */
  missingFrom(other: GtidSet): string;
  /**
   * The set as a server takes it for a restored position: MySQL's set itself; for MariaDB the
   * newest GTID of each domain (what gtid_slave_pos holds).
   */
  position(): string;
  toString(): string;
}

export function parseGtidSet(flavor: FlavorName, text: string): GtidSet {
  const clean = text.replace(/\s+/g, '');
  if (!isValidGtidSet(flavor, clean)) {
    throw new StepbackError(`${JSON.stringify(text.slice(0, 200))} is not a ${flavor} GTID set`);
  }
  return flavor === 'mariadb' ? MariadbState.parse(clean) : MysqlSet.parse(clean);
}

/** Whether `text` is one GTID of the flavor (`0-1-5`, `uuid:5`). */
export function isSingleGtid(flavor: FlavorName, text: string): boolean {
  return flavor === 'mariadb'
    ? /^\d{1,10}-\d{1,10}-\d{1,20}$/.test(text)
    : /^[0-9a-fA-F-]{36}(:[a-z_][a-z0-9_]{0,31})?:\d{1,20}$/.test(text);
}

interface MariadbGtid {
  domain: number;
  server: number;
  seq: bigint;
}

function parseMariadbGtid(text: string): MariadbGtid {
  const [domain, server, seq] = text.split('-');
  return { domain: Number(domain), server: Number(server), seq: BigInt(seq ?? '0') };
}

class MariadbState implements GtidSet {
  readonly flavor = 'mariadb' as const;
  /** `domain-server` → last sequence. */
  readonly #last: ReadonlyMap<string, bigint>;

  private constructor(last: ReadonlyMap<string, bigint>) {
    this.#last = last;
  }

  static parse(text: string): MariadbState {
    const last = new Map<string, bigint>();
    for (const item of text === '' ? [] : text.split(',')) {
      const { domain, server, seq } = parseMariadbGtid(item);
      const key = `${domain}-${server}`;
      if ((last.get(key) ?? -1n) < seq) last.set(key, seq);
    }
    return new MariadbState(last);
  }

  /** The highest sequence this state reached in `domain`. */
  #reached(domain: number): bigint {
    let best = -1n;
    for (const [key, seq] of this.#last) if (key.split('-')[0] === String(domain) && seq > best) best = seq;
    return best;
  }

  has(gtid: string): boolean {
    const { domain, seq } = parseMariadbGtid(gtid);
    return this.#reached(domain) >= seq;
  }

  covers(other: GtidSet): boolean {
    return this.missingFrom(other) === '';
  }

  with(gtid: string): GtidSet {
    const { domain, server, seq } = parseMariadbGtid(gtid);
    const last = new Map(this.#last);
    const key = `${domain}-${server}`;
    if ((last.get(key) ?? -1n) < seq) last.set(key, seq);
    return new MariadbState(last);
  }

  missingFrom(other: GtidSet): string {
    return [...(other as MariadbState).#last]
      .map(([key, seq]) => `${key}-${seq}`)
      .filter((gtid) => !this.has(gtid))
      .join(',');
  }

  position(): string {
    const newest = new Map<string, [string, bigint]>();
    for (const [key, seq] of this.#last) {
      const domain = key.split('-')[0] ?? '';
      if ((newest.get(domain)?.[1] ?? -1n) < seq) newest.set(domain, [`${key}-${seq}`, seq]);
    }
    return [...newest.values()].map(([gtid]) => gtid).join(',');
  }

  toString(): string {
    return [...this.#last]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, seq]) => `${key}-${seq}`)
      .join(',');
  }
}

/** Closed intervals [start, end], sorted and merged. */
type Intervals = [bigint, bigint][];

function merge(intervals: Intervals): Intervals {
  const sorted = [...intervals].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const merged: Intervals = [];
  for (const [start, end] of sorted) {
    const last = merged.at(-1);
    if (last && start <= last[1] + 1n) {
      if (end > last[1]) last[1] = end;
    } else merged.push([start, end]);
  }
  return merged;
}

/** `a` minus `b`. */
function subtract(a: Intervals, b: Intervals): Intervals {
  let result = a.map(([s, e]) => [s, e] as [bigint, bigint]);
  for (const [bs, be] of b) {
    result = result.flatMap(([s, e]): Intervals => {
      if (be < s || bs > e) return [[s, e]];
      const parts: Intervals = [];
      if (bs > s) parts.push([s, bs - 1n]);
      if (be < e) parts.push([be + 1n, e]);
      return parts;
    });
  }
  return result;
}

class MysqlSet implements GtidSet {
  readonly flavor = 'mysql' as const;
  /** `uuid` or `uuid:tag` (lower case) → intervals. */
  readonly #sids: ReadonlyMap<string, Intervals>;

  private constructor(sids: ReadonlyMap<string, Intervals>) {
    this.#sids = sids;
  }

  static parse(text: string): MysqlSet {
    const sids = new Map<string, Intervals>();
    for (const item of text === '' ? [] : text.split(',')) {
      const parts = item.toLowerCase().split(':');
      const uuid = parts.shift() ?? '';
      let sid = uuid;
      for (const part of parts) {
        if (/^[a-z_]/.test(part)) {
          sid = `${uuid}:${part}`;
          continue;
        }
        const [start, end = start] = part.split('-');
        sids.set(sid, merge([...(sids.get(sid) ?? []), [BigInt(start ?? '0'), BigInt(end ?? '0')]]));
      }
    }
    return new MysqlSet(sids);
  }

  static #split(gtid: string): [string, bigint] {
    const at = gtid.lastIndexOf(':');
    return [gtid.slice(0, at).toLowerCase(), BigInt(gtid.slice(at + 1))];
  }

  has(gtid: string): boolean {
    const [sid, gno] = MysqlSet.#split(gtid);
    return (this.#sids.get(sid) ?? []).some(([s, e]) => s <= gno && gno <= e);
  }

  covers(other: GtidSet): boolean {
    return this.missingFrom(other) === '';
  }

  with(gtid: string): GtidSet {
    const [sid, gno] = MysqlSet.#split(gtid);
    const sids = new Map(this.#sids);
    sids.set(sid, merge([...(sids.get(sid) ?? []), [gno, gno]]));
    return new MysqlSet(sids);
  }

  missingFrom(other: GtidSet): string {
    const missing = new Map<string, Intervals>();
    for (const [sid, intervals] of (other as MysqlSet).#sids) {
      const left = subtract(intervals, this.#sids.get(sid) ?? []);
      if (left.length > 0) missing.set(sid, left);
    }
    return new MysqlSet(missing).toString();
  }

  position(): string {
    return this.toString();
  }

  toString(): string {
    return [...this.#sids]
      .filter(([, intervals]) => intervals.length > 0)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(
        ([sid, intervals]) =>
          `${sid}:${intervals.map(([s, e]) => (s === e ? `${s}` : `${s}-${e}`)).join(':')}`,
      )
      .join(',');
  }
}
