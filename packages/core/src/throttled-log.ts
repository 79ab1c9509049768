import type { Logger } from 'pino';

/**
 * Logs a line that can come once per event without flooding: a wave of a thousand
 * events must not write a thousand lines saying the same. The first line of a kind is
 * logged at once, then at most one per `intervalMs`, which says how many it stands
 * for since the one before. The counter metrics have every occurrence; the log only
 * has to say that it is happening.
 */
export class ThrottledLog {
  private readonly lastLogged = new Map<string, number>();
  private readonly unlogged = new Map<string, number>();

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number,
    private readonly intervalMs = 10_000,
  ) {}

  /**
   * Logs `msg` with `fields` at `level`, unless a line of `kind` was logged less than
   * `intervalMs` ago: then only counts it, for the next line of that kind to give in `countField`.
   */
  log(kind: string, level: 'warn' | 'error', fields: Record<string, unknown>, msg: string, countField: string): void {
    const now = this.now();
    const last = this.lastLogged.get(kind);
    if (last !== undefined && now - last < this.intervalMs) {
      this.unlogged.set(kind, (this.unlogged.get(kind) ?? 0) + 1);
      return;
    }
    const also = this.unlogged.get(kind) ?? 0;
    this.unlogged.delete(kind);
    this.lastLogged.set(kind, now);
    this.logger[level]({ ...fields, ...(also ? { [countField]: also } : {}) }, msg);
  }
}
