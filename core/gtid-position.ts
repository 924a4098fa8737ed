import type { FlavorName } from './gtid.ts';
import { isValidGtidSet } from './gtid.ts';

/**
 * A replication position that grows one transaction at a time and answers "has it reached that
 * position?": what catch-up stores with the rows it applied and compares with where it must stop.
 * MariaDB's is the last sequence number per domain; MySQL's is a set of intervals per source uuid.
 */
export interface GtidPosition {
  /** Records one applied transaction (`0-1-100`, `uuid:17`). */
  add(gtid: string): void;
  /** Whether every transaction of `position` is in this one. */
  covers(position: string): boolean;
  toString(): string;
}

export function gtidPosition(flavor: FlavorName, text: string): GtidPosition {
  if (!isValidGtidSet(flavor, text))
    throw new RangeError(`${JSON.stringify(text)} is not a ${flavor} GTID set`);
  return flavor === 'mariadb' ? new MariadbPosition(text) : new MysqlGtidSet(text);
}

interface MariadbGtid {
  domain: string;
  server: string;
  sequence: bigint;
}

function parseMariadbGtid(text: string): MariadbGtid {
  const match = /^(\d+)-(\d+)-(\d+)$/.exec(text.trim());
  if (!match) throw new RangeError(`${JSON.stringify(text)} is not a MariaDB GTID`);
  return { domain: match[1]!, server: match[2]!, sequence: BigInt(match[3]!) };
}

/** `0-1-100,1-2-7`: the last transaction per replication domain. */
class MariadbPosition implements GtidPosition {
  readonly #domains = new Map<string, MariadbGtid>();

  constructor(text: string) {
    for (const part of text.split(',').filter((p) => p.trim() !== '')) this.add(part);
  }

  add(gtid: string): void {
    const parsed = parseMariadbGtid(gtid);
    this.#domains.set(parsed.domain, parsed);
  }

  covers(position: string): boolean {
    for (const part of position.split(',').filter((p) => p.trim() !== '')) {
      const wanted = parseMariadbGtid(part);
      const ours = this.#domains.get(wanted.domain);
      // Sequence numbers grow within a domain whichever server wrote them.
      if (!ours || ours.sequence < wanted.sequence) return false;
    }
    return true;
  }

  toString(): string {
    return [...this.#domains.values()]
      .sort((a, b) => Number(a.domain) - Number(b.domain))
      .map((g) => `${g.domain}-${g.server}-${g.sequence}`)
      .join(',');
  }
}

/** Inclusive intervals, sorted and merged. */
type Intervals = [bigint, bigint][];

function addInterval(intervals: Intervals, start: bigint, end: bigint): void {
  intervals.push([start, end]);
  intervals.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const merged: Intervals = [];
  for (const interval of intervals) {
    const last = merged.at(-1);
    // Math.max takes no bigints.
    if (last && interval[0] <= last[1] + 1n) {
      if (interval[1] > last[1]) last[1] = interval[1];
    } else merged.push([interval[0], interval[1]]);
  }
  intervals.splice(0, intervals.length, ...merged);
}

/** `uuid:1-5:7,uuid2[:tag]:1-3`: the transactions executed, as intervals per source (and tag). */
class MysqlGtidSet implements GtidPosition {
  readonly #sources = new Map<string, Intervals>();

  constructor(text: string) {
    this.#addSet(this.#sources, text);
  }

  #addSet(into: Map<string, Intervals>, text: string): void {
    for (const block of text.replace(/\s/g, '').split(',').filter(Boolean)) {
      const parts = block.split(':');
      let source = parts[0]!.toLowerCase();
      const uuid = source;
      for (const part of parts.slice(1)) {
        if (/^[a-z_]/i.test(part)) {
          source = `${uuid}:${part.toLowerCase()}`;
          continue;
        }
        const [from, to = from] = part.split('-') as [string, string?];
        const intervals = into.get(source) ?? [];
        into.set(source, intervals);
        addInterval(intervals, BigInt(from), BigInt(to));
      }
    }
  }

  add(gtid: string): void {
    const at = gtid.lastIndexOf(':');
    const sequence = BigInt(gtid.slice(at + 1));
    const source = gtid.slice(0, at).toLowerCase();
    const intervals = this.#sources.get(source) ?? [];
    this.#sources.set(source, intervals);
    addInterval(intervals, sequence, sequence);
  }

  covers(position: string): boolean {
    const wanted = new Map<string, Intervals>();
    this.#addSet(wanted, position);
    for (const [source, intervals] of wanted) {
      const ours = this.#sources.get(source) ?? [];
      for (const [start, end] of intervals) {
        if (!ours.some(([from, to]) => from <= start && end <= to)) return false;
      }
    }
    return true;
  }

  toString(): string {
    const byUuid = new Map<string, string[]>();
    for (const [source, intervals] of [...this.#sources].sort(([a], [b]) => a.localeCompare(b))) {
      const [uuid, tag] = source.split(':') as [string, string?];
      const text = intervals.map(([from, to]) => (from === to ? `${from}` : `${from}-${to}`)).join(':');
      const parts = byUuid.get(uuid) ?? [];
      parts.push(tag ? `${tag}:${text}` : text);
      byUuid.set(uuid, parts);
    }
    return [...byUuid].map(([uuid, parts]) => `${uuid}:${parts.join(':')}`).join(',');
  }
}
