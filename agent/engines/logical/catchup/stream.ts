import ZongJi, { type AnyBinlogEvent } from '@vlasky/zongji';
import { StepbackError } from '../../../../core/errors.ts';
import type { ConnectionTarget } from '../../../mysql/connection.ts';

export type Row = Record<string, unknown>;

/** What catch-up needs of the source's binary log, in transaction order. */
export type SourceEvent =
  | { type: 'begin'; gtid: string }
  | { type: 'insert' | 'delete'; table: string; rows: Row[] }
  | { type: 'update'; table: string; rows: { before: Row; after: Row }[] }
  /** A transaction's end: its gtid is now applied; `timestamp` is when the source committed it (ms). */
  | { type: 'commit'; gtid: string; timestamp: number }
  /**
   * A statement logged as text: DDL, a transaction of its own (`standalone`), or a statement-based
   * change inside a transaction.
   */
  | {
      type: 'statement';
      gtid: string;
      schema: string;
      query: string;
      standalone: boolean;
      timestamp: number;
    };

/** Events held before the source connection is paused: bounds memory when applying is slower. */
const HIGH_WATER = 2000;
const LOW_WATER = 500;

/**
 * The source's binary log from a GTID position, as an async queue of SourceEvents. The reader
 * (`@vlasky/zongji`) pushes events as they arrive; when more than HIGH_WATER wait, the replication
 * connection is paused until the applier has taken them down to LOW_WATER.
 */
export class BinlogStream {
  readonly #zongji: ZongJi;
  readonly #queue: SourceEvent[] = [];
  #head = 0;
  #failure: Error | undefined;
  #wake: (() => void) | undefined;
  #paused = false;
  #inTransaction = false;
  #ready: Promise<void>;

  constructor(
    target: ConnectionTarget,
    options: { position: string; serverId: number; database: string; tables: readonly string[] },
  ) {
    this.#zongji = new ZongJi({
      ...(target.socket
        ? { socketPath: target.socket }
        : { host: target.host ?? '127.0.0.1', port: target.port ?? 3306 }),
      user: target.user,
      password: target.password ?? '',
      // Exact values: big integers and DECIMALs as strings, temporal values as the server's text in UTC.
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      timezone: 'Z',
      charset: 'utf8mb4_general_ci',
    });
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#zongji.once('ready', resolve);
      this.#zongji.once('error', reject);
    });
    this.#zongji.on('binlog', (event) => this.#take(event, options.database));
    this.#zongji.on('error', (error) => this.#fail(error));
    this.#zongji.start({
      gtidSet: options.position,
      serverId: options.serverId,
      includeEvents: [
        'tablemap',
        'writerows',
        'updaterows',
        'deleterows',
        'gtid',
        'mariadbgtid',
        'query',
        'xid',
      ],
      includeSchema: { [options.database]: [...options.tables] },
    });
  }

  /** Resolves once the source accepted the position (rejects with its error, e.g. a purged GTID). */
  ready(): Promise<void> {
    return this.#ready.catch((error: unknown) => {
      throw new StepbackError(`the source refused to stream its binary log: ${(error as Error).message}`, {
        cause: error,
        hint: 'check that the source still holds the binary logs from the snapshot position (not purged) and that the user has REPLICATION SLAVE and REPLICATION CLIENT',
      });
    });
  }

  /** Events waiting to be taken. */
  get waiting(): number {
    return this.#queue.length - this.#head;
  }

  /** The next event; waits up to `timeoutMs`, then resolves undefined. */
  async next(timeoutMs: number): Promise<SourceEvent | undefined> {
    if (this.waiting === 0 && !this.#failure) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    if (this.#failure) throw this.#failure;
    if (this.waiting === 0) return undefined;
    const event = this.#queue[this.#head++]!;
    if (this.#head > 4096) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
    if (this.#paused && this.waiting <= LOW_WATER) {
      this.#paused = false;
      this.#zongji.connection?.resume();
    }
    return event;
  }

  stop(): void {
    this.#zongji.stop();
  }

  #push(event: SourceEvent): void {
    this.#queue.push(event);
    if (!this.#paused && this.waiting >= HIGH_WATER) {
      this.#paused = true;
      this.#zongji.connection?.pause();
    }
    this.#wake?.();
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    this.#wake?.();
  }

  #take(event: AnyBinlogEvent, database: string): void {
    const gtid = event.gtid ?? '';
    switch (event.getEventName()) {
      case 'mariadbgtid':
        if (!(event as { standalone: boolean }).standalone) {
          this.#inTransaction = true;
          this.#push({ type: 'begin', gtid });
        }
        return;
      case 'writerows':
      case 'deleterows':
      case 'updaterows': {
        const rows = event as unknown as {
          tableId: number;
          tableMap: Record<number, { tableName: string; parentSchema: string }>;
          rows: Row[];
        };
        const table = rows.tableMap[rows.tableId];
        if (!table || table.parentSchema !== database) return;
        const name = event.getEventName();
        if (name === 'updaterows') {
          this.#push({
            type: 'update',
            table: table.tableName,
            rows: rows.rows as unknown as { before: Row; after: Row }[],
          });
        } else {
          this.#push({
            type: name === 'writerows' ? 'insert' : 'delete',
            table: table.tableName,
            rows: rows.rows,
          });
        }
        return;
      }
      case 'xid':
        this.#inTransaction = false;
        this.#push({ type: 'commit', gtid, timestamp: event.timestamp });
        return;
      case 'query': {
        const { query, schema } = event as unknown as { query: string; schema: string };
        const word = query.trim().split(/\s+/, 1)[0]!.toUpperCase();
        if (word === 'BEGIN') {
          this.#inTransaction = true;
          this.#push({ type: 'begin', gtid });
        } else if (word === 'COMMIT' || word === 'ROLLBACK') {
          this.#inTransaction = false;
          this.#push({ type: 'commit', gtid, timestamp: event.timestamp });
        } else {
          const standalone = !this.#inTransaction;
          this.#push({ type: 'statement', gtid, schema, query, standalone, timestamp: event.timestamp });
        }
        return;
      }
      default:
        return;
    }
  }
}
