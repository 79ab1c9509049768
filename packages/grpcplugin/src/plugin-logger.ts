import { pino, type DestinationStream, type Logger } from 'pino';

/** The lowest level a logger writes (pino's names); `silent` turns logging off. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** Options of {@link createJsonLogger} and {@link jsonLogger}. */
export interface JsonLoggerOptions {
  /** The `service` field of every line, e.g. `hollowtrees-k8s-drain`. */
  service: string;
  /** Lowest level written. Default `info`. */
  level?: LogLevel;
  /** Where the lines go. Default: stdout, buffered and written asynchronously. */
  destination?: DestinationStream;
}

/**
 * The one log format of Hollowtrees, core and plugins alike: a pino logger writing one JSON object
 * a line, `{"level":"info","time":"<RFC 3339>","service":...,...fields,"msg":...}`. The level is
 * its name, not pino's number: readable without pino's table, and what log pipelines (Loki, Cloud
 * Logging, Elasticsearch) take as severity as it is. An error logged under `err` becomes
 * `{type, message, stack}` (pino's standard serializer).
 *
 * Lines go to stdout: every Hollowtrees process is a service whose output is its log, which
 * container runtimes, journald and `kubectl logs` collect from there; stderr keeps the
 * human-readable lines of a CLI that cannot start (usage errors, bad credentials), so a pipeline
 * parsing stdout only ever sees JSON. The destination is asynchronous, so a plugin busy with a wave
 * does not make a system call per line; pino flushes it when the process exits.
 */
export function createJsonLogger(options: JsonLoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: options.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}

/** Fields of a log line; an `Error` under `err` is written as `{type, message, stack}`. */
export type LogFields = Record<string, unknown>;

/** Where a plugin reports what it does (and, in dry-run, what it would do): message first, then fields. */
export interface PluginLogger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** A {@link PluginLogger} writing through `logger` (e.g. a child of core's logger). */
export function pluginLogger(logger: Logger): PluginLogger {
  return {
    debug: (message, fields) => logger.debug(fields ?? {}, message),
    info: (message, fields) => logger.info(fields ?? {}, message),
    warn: (message, fields) => logger.warn(fields ?? {}, message),
    error: (message, fields) => logger.error(fields ?? {}, message),
  };
}

/** A {@link PluginLogger} in the format of {@link createJsonLogger}. */
export function jsonLogger(options: JsonLoggerOptions): PluginLogger {
  return pluginLogger(createJsonLogger(options));
}
