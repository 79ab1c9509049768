import type { Logger } from 'pino';
import { ThrottledLog } from '../throttled-log.js';

/**
 * Logs dropped events without flooding: the first drop of a flow at once,
 * then one line per `intervalMs` with how many more were dropped. The counter
 * metric has every drop; the log only has to say that it is happening.
 */
export class DropLog {
  private readonly log: ThrottledLog;

  constructor(logger: Logger, now: () => number, intervalMs = 10_000) {
    this.log = new ThrottledLog(logger, now, intervalMs);
  }

  dropped(flow: string, reason: string, fields: Record<string, unknown>): void {
    this.log.log(`${flow}\0${reason}`, 'warn', { flow, reason, ...fields }, `event dropped: ${reason.replaceAll('_', ' ')}`, 'alsoDroppedSinceLastLine');
  }
}
