/** Where a group is in its life: a run queued or calling plugins, or a cooldown after success. */
export type GroupPhase = 'running' | 'cooling';

/** The state of one group, as the status API shows it. */
export interface GroupState {
  key: string;
  flow: string;
  phase: GroupPhase;
  /** Event that started the run. */
  eventId: string;
  /** When the run started (running) or finished (cooling), ms since epoch. */
  since: number;
  /** End of the cooldown, ms since epoch. */
  until?: number;
}

/**
 * The run state of every group. `tryStart` is the atomic check-and-start:
 * JavaScript runs it to completion, so two copies of one alert can never both
 * see the group free.
 */
export class GroupStates {
  private readonly groups = new Map<string, GroupState>();

  /** @param persist told of every change, in order (the state journal). */
  constructor(private readonly persist: (change: GroupState | { key: string; phase: 'free' }) => void = () => {}) {}

  /** Marks the group running and returns true, unless it is running or still cooling down. */
  tryStart(key: string, flow: string, eventId: string, now: number): boolean {
    const current = this.groups.get(key);
    if (current && (current.phase === 'running' || current.until! > now)) return false;
    const state: GroupState = { key, flow, phase: 'running', eventId, since: now };
    this.groups.set(key, state);
    this.persist(state);
    return true;
  }

  /** After success: hold the group for `cooldownMs` (none when 0). */
  succeeded(key: string, now: number, cooldownMs: number): void {
    const current = this.groups.get(key);
    if (!current) return;
    if (cooldownMs <= 0) {
      this.release(key);
      return;
    }
    // Spelled out rather than spread: one object shape for every cooling group, the smallest one.
    const state: GroupState = { key: current.key, flow: current.flow, phase: 'cooling', eventId: current.eventId, since: now, until: now + cooldownMs };
    this.groups.set(key, state);
    this.persist(state);
  }

  /** After failure, or when the run never started: the group is free again, so the next re-send retries. */
  release(key: string): void {
    if (this.groups.delete(key)) this.persist({ key, phase: 'free' });
  }

  /** Restores a state read back from disk. */
  restore(state: GroupState): void {
    this.groups.set(state.key, state);
  }

  /** Forgets cooldowns that are over; returns how many. Not journalled: a reader drops them by time too. */
  sweep(now: number): number {
    let removed = 0;
    for (const [key, state] of this.groups) {
      if (state.phase === 'cooling' && state.until! <= now) {
        this.groups.delete(key);
        removed++;
      }
    }
    return removed;
  }

  /** Groups still cooling down, per flow. */
  coolingByFlow(now: number): Map<string, number> {
    const counts = new Map<string, number>();
    for (const state of this.groups.values()) {
      if (state.phase === 'cooling' && state.until! > now) counts.set(state.flow, (counts.get(state.flow) ?? 0) + 1);
    }
    return counts;
  }

  /** Every live state (cooldowns that are over left out). */
  list(now: number): GroupState[] {
    return [...this.groups.values()].filter((s) => s.phase === 'running' || s.until! > now);
  }

  get size(): number {
    return this.groups.size;
  }
}
