import { loadavg, availableParallelism } from 'node:os';
import { monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram } from 'node:perf_hooks';

/** What the timeline reads at each sample besides the process's own state. */
export interface TimelineProbe {
  /** First attempts of plugin calls that core counted as DEADLINE_EXCEEDED so far, by plugin. */
  deadlineFirst(): Promise<Record<string, number>>;
  /** Where calls are now, by name: runs running, handlers at work, calls in the transport. */
  gauges(): Record<string, number>;
}

/** One sample: what happened since the one before it. */
interface Sample {
  /** Ms since the timeline started. */
  at: number;
  /** Longest event-loop delay seen since the sample before, in ms. */
  lagMs: number;
  /** Process CPU (user + system, all threads) over the wall time since the sample before, in % of one core. */
  cpu: number;
  /** Longest GC pause since the sample before, in ms. */
  gcMs: number;
  deadlineFirst: Record<string, number>;
  gauges: Record<string, number>;
}

const SAMPLE_MS = 100;
/** Rows printed at most: samples are merged into longer steps beyond that. */
const MAX_ROWS = 120;

const seconds = (ms: number): string => (ms / 1000).toFixed(1);

/**
 * Samples the process every 100 ms while a soak runs (event-loop lag, CPU, GC pauses, and the
 * probe's counts), so that a call that hit its deadline can be explained afterwards: the machine
 * (the loop stood still, CPU near 0: the process was not scheduled), the process itself (the loop
 * stood still at full CPU, a GC pause), or the transport (the loop kept turning while the calls waited).
 */
export class SoakTimeline {
  private readonly samples: Sample[] = [];
  private readonly lag: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private readonly gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) this.gcMs = Math.max(this.gcMs, entry.duration);
  });
  private gcMs = 0;
  private started = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private ticking: Promise<void> = Promise.resolve();
  private readonly loadAtStart = loadavg();

  constructor(private readonly probe: TimelineProbe) {}

  start(): void {
    this.started = performance.now();
    this.lag.enable();
    this.gc.observe({ entryTypes: ['gc'] });
    let cpu = process.cpuUsage();
    let last = this.started;
    const tick = async (): Promise<void> => {
      const now = performance.now();
      const used = process.cpuUsage(cpu);
      cpu = process.cpuUsage();
      const sample: Sample = {
        at: now - this.started,
        // The histogram misses a stop of the whole process (SIGSTOP, a VM paused): the late sample itself shows it.
        lagMs: Math.max(this.lag.max / 1e6, now - last - SAMPLE_MS),
        cpu: ((used.user + used.system) / 1000 / Math.max(1, now - last)) * 100,
        gcMs: this.gcMs,
        deadlineFirst: {},
        gauges: this.probe.gauges(),
      };
      last = now;
      this.lag.reset();
      this.gcMs = 0;
      sample.deadlineFirst = await this.probe.deadlineFirst();
      this.samples.push(sample);
      if (!this.stopped) this.next(tick);
    };
    this.next(tick);
  }

  /** Samples again in {@link SAMPLE_MS}; the timer does not hold the process should a failed check skip {@link stop}. */
  private next(tick: () => Promise<void>): void {
    this.timer = setTimeout(() => (this.ticking = tick()), SAMPLE_MS).unref();
  }

  /** Stops sampling: a sample under way is kept, none is taken after it (the last is at most {@link SAMPLE_MS} old). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    this.lag.disable();
    this.gc.disconnect();
  }

  /**
   * What a failed check prints: when `plugin`'s first calls that hit their `timeoutMs` deadline
   * started, and the lag, CPU, GC and counts around then. Empty when none did.
   */
  explainDeadlines(plugin: string, timeoutMs: number): string {
    const hits: Array<{ from: number; to: number; count: number }> = [];
    let before = 0;
    let previousAt = 0;
    for (const sample of this.samples) {
      const count = sample.deadlineFirst[plugin] ?? 0;
      if (count > before) hits.push({ from: previousAt, to: sample.at, count: count - before });
      before = count;
      previousAt = sample.at;
    }
    if (hits.length === 0) return `\n[soak timeline] no first call of ${plugin} hit its deadline while sampled; ${this.machine()}`;
    const total = hits.reduce((n, h) => n + h.count, 0);
    // A call counted between two samples passed its deadline before the later one: it started at least timeoutMs earlier.
    const started = hits.map((h) => `${h.count} counted in ${seconds(h.from)}-${seconds(h.to)} s, so started by ${seconds(h.to - timeoutMs)} s`);
    const from = Math.max(0, hits[0]!.from - timeoutMs - 1_000);
    const to = hits[hits.length - 1]!.to + 500;
    const window = this.samples.filter((s) => s.at >= from && s.at <= to);
    const stall = window.reduce((most, s) => (s.lagMs > most.lagMs ? s : most), window[0]!);
    const verdict =
      stall.lagMs >= timeoutMs * 0.5
        ? `the event loop stood still for ${seconds(stall.lagMs)} s (sample at ${seconds(stall.at)} s) with the process at ${stall.cpu.toFixed(0)}% CPU: ` +
          // A GC entry spans the stop too when one was under way: its length says nothing while the CPU stood still.
          (stall.cpu < 50 ? 'the process was not running (the machine: not scheduled, or stopped)' : `the process was busy (longest GC pause ${stall.gcMs.toFixed(0)} ms)`)
        : `the event loop kept turning (longest lag ${stall.lagMs.toFixed(0)} ms): the calls waited while the process ran; runs running while the plugin's handler was at work on none of them waited in the transport`;
    return [
      `\n[soak timeline] ${total} first calls of ${plugin} hit their ${seconds(timeoutMs)} s deadline: ${started.join('; ')} (times from the start of the load).`,
      `[soak timeline] ${verdict}. ${this.machine()}`,
      `[soak timeline] ${seconds(from)}-${seconds(to)} s: time, longest loop lag, process CPU, longest GC pause, ${plugin} first calls counted DEADLINE_EXCEEDED, then the counts at the step's end:`,
      ...this.rows(window, plugin),
    ].join('\n');
  }

  private machine(): string {
    const end = loadavg();
    return `Load average (1 min) ${this.loadAtStart[0]!.toFixed(1)} at the start, ${end[0]!.toFixed(1)} now, on ${availableParallelism()} CPUs.`;
  }

  /** `window` as at most {@link MAX_ROWS} rows, consecutive samples merged into steps when there are more. */
  private rows(window: Sample[], plugin: string): string[] {
    const per = Math.max(1, Math.ceil(window.length / MAX_ROWS));
    const rows: string[] = [];
    for (let i = 0; i < window.length; i += per) {
      const step = window.slice(i, i + per);
      const last = step[step.length - 1]!;
      const lag = Math.max(...step.map((s) => s.lagMs));
      const gc = Math.max(...step.map((s) => s.gcMs));
      const cpu = step.reduce((n, s) => n + s.cpu, 0) / step.length;
      const counts = Object.entries(last.gauges).map(([name, value]) => `${name}=${value}`).join(' ');
      rows.push(`  ${seconds(last.at).padStart(6)} s  lag ${lag.toFixed(0).padStart(5)} ms  cpu ${cpu.toFixed(0).padStart(3)}%  gc ${gc.toFixed(0).padStart(4)} ms  deadline=${last.deadlineFirst[plugin] ?? 0}  ${counts}`);
    }
    return rows;
  }
}
