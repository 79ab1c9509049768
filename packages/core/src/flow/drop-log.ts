import type { Logger } from 'pino';

/**
 * Logs dropped events without flooding: the first drop of a flow at once,
 * then one line per `intervalMs` with how many more were dropped. The counter
 * metric has every drop; the log only has to say that it is happening.
 */
export class DropLog {
  private readonly lastLogged = new Map<string, number>();
  private readonly unlogged = new Map<string, number>();

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number,
    private readonly intervalMs = 10_000,
  ) {}

  dropped(flow: string, reason: string, fields: Record<string, unknown>): void {
    const key = `${flow}\0${reason}`;
    const now = this.now();
    const last = this.lastLogged.get(key);
    if (last !== undefined && now - last < this.intervalMs) {
      this.unlogged.set(key, (this.unlogged.get(key) ?? 0) + 1);
      return;
    }
    const alsoDropped = this.unlogged.get(key) ?? 0;
    this.unlogged.delete(key);
    this.lastLogged.set(key, now);
    this.logger.warn({ flow, reason, ...fields, ...(alsoDropped ? { alsoDroppedSinceLastLine: alsoDropped } : {}) }, `event dropped: ${reason.replaceAll('_', ' ')}`);
  }
}
