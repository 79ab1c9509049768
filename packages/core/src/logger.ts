import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * The structured JSON logger core writes with; `destination` defaults to stdout.
 * One object a line: `{"level":"info","time":"<RFC 3339>","service":"hollowtrees",...fields,"msg":...}`.
 * The level is pino's label, not its number, as the plugins' logger writes it:
 * readable without pino's table, and what log pipelines (Loki, Cloud Logging,
 * Elasticsearch) take as severity as it is.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    { level, base: { service: 'hollowtrees' }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    destination ?? pino.destination({ sync: false }),
  );
}
