/** Structured fields that travel with a log line. */
export type LogFields = Record<string, unknown>;

/**
 * Where core and agent code say what is happening. Core never writes to stdout: the CLI, the
 * Lambda wrapper or a test decides where lines go.
 */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const levelOrder: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface LogRecord {
  level: LogLevel;
  message: string;
  fields: LogFields | undefined;
}

/** A logger that hands records at or above `minimum` to `sink`. */
export function createLogger(sink: (record: LogRecord) => void, minimum: LogLevel = 'info'): Logger {
  const emit = (level: LogLevel) => (message: string, fields?: LogFields) => {
    if (levelOrder[level] >= levelOrder[minimum]) sink({ level, message, fields });
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export const silentLogger: Logger = createLogger(() => {});

/** A logger that keeps its records, for tests and for reports that list warnings. */
export function recordingLogger(): Logger & { records: LogRecord[] } {
  const records: LogRecord[] = [];
  return Object.assign(
    createLogger((record) => records.push(record), 'debug'),
    { records },
  );
}

/** One human line: `message key=value …`. */
export function formatLogRecord(record: LogRecord): string {
  const fields = record.fields
    ? Object.entries(record.fields)
        .filter(([, value]) => value !== undefined)
        .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    : [];
  const prefix = record.level === 'info' ? '' : `${record.level}: `;
  return [prefix + record.message, ...fields].join(' ');
}
