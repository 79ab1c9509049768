import { setMaxListeners } from 'node:events';

/** A run's cancellation: the signal its plugin calls listen to, and what the run calls once it is over. */
export interface RunSignal {
  readonly signal: AbortSignal;
  release(): void;
}

/**
 * Runs that share one signal, at most this many. Node 20 takes several µs to make an
 * AbortController, once per run of a 10,000-alert wave; one signal for every run makes each
 * plugin call pay for the others instead (EventTarget scans its listeners on add and remove:
 * ~19 µs a call with 10,000 runs in flight). 64 keeps the scan short and the controllers few.
 */
export const RUNS_PER_SIGNAL = 64;

interface SharedSignal {
  readonly controller: AbortController;
  /** Runs given this signal so far; it takes no more at RUNS_PER_SIGNAL. */
  taken: number;
  /** Of those, runs not yet released. */
  running: number;
}

/**
 * The signals of an engine's runs. A shutdown ({@link abortAll}) aborts every one, and every
 * signal handed out after it comes aborted. A run whose hold can be lost on its own (a Lease
 * another replica may take) gets a signal of its own, so that losing it stops only that run.
 */
export class RunSignals {
  /** Controllers with runs in flight, or that may still get some. */
  private readonly live = new Set<AbortController>();
  private current: SharedSignal | undefined;
  private abortedWith: Error | undefined;

  /** A signal only a shutdown aborts, shared with other runs. */
  shared(): RunSignal {
    let group = this.current;
    if (!group || group.taken >= RUNS_PER_SIGNAL) {
      if (group && group.running === 0) this.live.delete(group.controller);
      group = this.current = { controller: this.controller(), taken: 0, running: 0 };
      // Each run in flight on it may listen twice at once (its plugin call, a backoff sleep).
      setMaxListeners(2 * RUNS_PER_SIGNAL + 8, group.controller.signal);
    }
    group.taken++;
    group.running++;
    const shared = group;
    return {
      signal: shared.controller.signal,
      release: () => {
        // Dropped once its last run is over and it takes no more runs, so a shutdown does not visit it.
        if (--shared.running === 0 && shared !== this.current) this.live.delete(shared.controller);
      },
    };
  }

  /** A signal of its own, aborted by a shutdown or by `lost`. */
  own(lost: AbortSignal): RunSignal {
    const controller = this.controller();
    const onLost = (): void => controller.abort(lost.reason);
    if (lost.aborted) onLost();
    else lost.addEventListener('abort', onLost, { once: true });
    return {
      signal: controller.signal,
      release: () => {
        lost.removeEventListener('abort', onLost);
        this.live.delete(controller);
      },
    };
  }

  /** Aborts every signal handed out, and every one handed out from now on, with `reason`. */
  abortAll(reason: Error): void {
    this.abortedWith = reason;
    for (const controller of this.live) controller.abort(reason);
    this.live.clear();
    this.current = undefined;
  }

  /** Controllers that a shutdown would visit now. */
  get size(): number {
    return this.live.size;
  }

  private controller(): AbortController {
    const controller = new AbortController();
    if (this.abortedWith) controller.abort(this.abortedWith);
    else this.live.add(controller);
    return controller;
  }
}
