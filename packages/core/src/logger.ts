import { createJsonLogger, type LogLevel } from '@hollowtrees/grpcplugin/without-grpc';
import type { DestinationStream, Logger } from 'pino';

/**
 * Core's logger: the SDK's one log format ({@link createJsonLogger}) with `service: hollowtrees`,
 * on stdout unless `destination` is given.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return createJsonLogger({ service: 'hollowtrees', level, ...(destination && { destination }) });
}
