import { describe, expect, it } from 'vitest';
import { RUNS_PER_SIGNAL, RunSignals } from './run-signals.js';

describe('run signals', () => {
  it(`${RUNS_PER_SIGNAL} runs share a signal, the next run starts another; a shutdown aborts them all with its reason, and every later run's`, () => {
    const signals = new RunSignals();
    const runs = Array.from({ length: RUNS_PER_SIGNAL + 1 }, () => signals.shared());
    expect(new Set(runs.slice(0, RUNS_PER_SIGNAL).map((r) => r.signal)).size).toBe(1);
    expect(runs[RUNS_PER_SIGNAL]!.signal).not.toBe(runs[0]!.signal);
    const own = signals.own(new AbortController().signal);
    const reason = new Error('shutdown grace period over');
    signals.abortAll(reason);
    for (const run of [...runs, own]) expect(run.signal.reason).toBe(reason);
    const later = [signals.shared(), signals.own(new AbortController().signal)];
    for (const run of later) expect(run.signal.reason).toBe(reason);
    expect(signals.size).toBe(0);
  });

  it('a full signal some of whose runs are over still reaches the runs left on it at a shutdown', () => {
    const signals = new RunSignals();
    const first = Array.from({ length: RUNS_PER_SIGNAL }, () => signals.shared());
    signals.shared(); // the first signal is full: this one starts the next
    first[0]!.release();
    signals.abortAll(new Error('shutdown'));
    expect(first[1]!.signal.aborted).toBe(true);
  });

  it('a lost hold aborts only its own run, with the reason it was lost for', () => {
    const signals = new RunSignals();
    const hold = new AbortController();
    const own = signals.own(hold.signal);
    const shared = signals.shared();
    const other = signals.own(new AbortController().signal);
    hold.abort(new Error('the Lease was taken'));
    expect(own.signal.reason).toMatchObject({ message: 'the Lease was taken' });
    expect(shared.signal.aborted).toBe(false);
    expect(other.signal.aborted).toBe(false);
    // A hold lost before the run starts: its signal starts aborted.
    expect(signals.own(hold.signal).signal.aborted).toBe(true);
  });

  it('a released run no longer hears its hold, and a shutdown no longer visits it', () => {
    const signals = new RunSignals();
    const hold = new AbortController();
    const own = signals.own(hold.signal);
    own.release();
    hold.abort(new Error('lost after the run'));
    expect(own.signal.aborted).toBe(false);
    signals.abortAll(new Error('shutdown'));
    expect(own.signal.aborted).toBe(false);
  });

  it('keeps only the controllers a shutdown must reach: a wave of 10,000 runs, over, leaves one', () => {
    const signals = new RunSignals();
    const runs = Array.from({ length: 10_000 }, () => signals.shared());
    expect(signals.size).toBe(Math.ceil(10_000 / RUNS_PER_SIGNAL));
    // Released in an order unlike the one they started in.
    for (const run of [...runs.filter((_, i) => i % 2 === 1), ...runs.filter((_, i) => i % 2 === 0)]) run.release();
    expect(signals.size).toBe(1);
    // A full signal whose runs are over when it is replaced is dropped then.
    const next = Array.from({ length: RUNS_PER_SIGNAL }, () => signals.shared());
    next.forEach((run) => run.release());
    signals.shared();
    expect(signals.size).toBe(1);
  });

  it('a shared signal takes a listener per run and one more for a backoff sleep without a leak warning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const signals = new RunSignals();
      const runs = Array.from({ length: RUNS_PER_SIGNAL }, () => signals.shared());
      for (const run of runs) for (let i = 0; i < 2; i++) run.signal.addEventListener('abort', () => {});
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
      expect(warnings.map((w) => w.name)).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });
});
