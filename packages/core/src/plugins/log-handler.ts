import type { EventHandler } from '@hollowtrees/grpcplugin';
import type { Logger } from 'pino';

/** The built-in `log` plugin: writes the event it gets as one structured log line. */
export class LogHandler implements EventHandler {
  constructor(private readonly logger: Logger) {}

  handle(event: Parameters<EventHandler['handle']>[0], context: Parameters<EventHandler['handle']>[1]): { message: string } {
    this.logger.info({ plugin: 'log', flow: context.flow, attempt: context.attempt, event }, `event ${event.type}`);
    return { message: 'logged' };
  }
}
