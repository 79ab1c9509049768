import { pino, type DestinationStream, type Logger } from 'pino';

/** The structured JSON logger core writes with; `destination` defaults to stdout. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, base: { service: 'hollowtrees' }, timestamp: pino.stdTimeFunctions.isoTime }, destination ?? pino.destination({ sync: false }));
}
