import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { ReceiverLimits } from '../config/schema.js';
import { HttpError, type RejectReason } from './http-error.js';
import { parseAlerts, type AlertFormat, type ParsedAlerts } from './parse-alerts.js';

/** A body parsed on the worker thread (parse-worker.ts). */
export interface ParseJob {
  id: number;
  format: AlertFormat;
  body: Uint8Array;
  /** ms since the epoch. */
  receivedAt: number;
  limits: ReceiverLimits;
}

/**
 * A parsed request as it crosses threads: its events as JSON text. The thread that receives a
 * structured clone builds every object of it, and with 100-alert batches that took 5.5–8.9 µs an
 * event of the event loop's time against 3.3–3.6 µs for `JSON.parse` of the same events, whose
 * objects are also a quarter smaller (sized for their properties): the events wait in their flow's
 * queue, where each byte is copied by the collections they outlive.
 */
export type ParsedAnswer = Omit<ParsedAlerts, 'events'> & { eventsJson: string };

/** The worker's answer to a {@link ParseJob}: the parsed request, or why the request is refused. */
export type ParseAnswer =
  | { id: number; parsed: ParsedAnswer }
  | { id: number; error: { status: number; reason: RejectReason; message: string; headers: Record<string, string>; accepted: number | undefined } | { message: string } };

/**
 * Bodies from this size go to the worker: a batch (Prometheus sends up to 64 alerts a POST,
 * a wave's batches are of 100). A single alert stays in the thread, where it costs less than
 * the hand-over to another.
 */
export const OFF_THREAD_MIN_BYTES = 8 * 1024;

const WORKER_URL = new URL('./parse-worker.js', import.meta.url);

/** What the worker posts once its module has loaded and it takes bodies. */
export const WORKER_READY = 'ready';

/**
 * How long the worker idles after an answer before it collects its heap. V8 collects a heap only
 * as it allocates, so without this the garbage of the last batches stays for as long as the
 * thread idles (after a 100,000-alert fill, 20–85 MiB: bench/README.md). Within a wave batches
 * come milliseconds apart; the collection, a few milliseconds of the worker's own time, comes after.
 * What the thread still holds then (its code, and the young generation V8 keeps committed) is
 * 15–30 MiB more than a stopped thread's nothing: the price of its compiled code.
 */
export const IDLE_COLLECT_MS = 5_000;

/** What the worker is started with. */
export interface ParseWorkerData {
  /** See {@link IDLE_COLLECT_MS}. */
  idleCollectMs: number;
}

/** What the worker posts once it collected its heap after idling: its V8 heap's used bytes before and after. */
export interface IdleCollection {
  collected: { heapUsedBefore: number; heapUsedAfter: number };
}

/** Options of an {@link OffThreadParser}; the defaults are core's. */
export interface OffThreadParserOptions {
  /** The worker's module (tests give one that fails). */
  workerUrl?: URL;
  /** See {@link IDLE_COLLECT_MS}. */
  idleCollectMs?: number;
}

/** A body handed to the worker, and how to parse it here instead. */
interface Pending {
  /** The worker it was posted to: one stopped for idling may exit while its successor holds bodies. */
  worker: Worker;
  parseHere: () => Promise<ParsedAlerts>;
  resolve: (parsed: ParsedAlerts) => void;
  reject: (err: unknown) => void;
}

/**
 * Parses large alert bodies (JSON, validation, events: about a third of core's CPU in a reclaim
 * wave) on a worker thread, so the event loop meanwhile starts the runs of the batches before:
 * with both on one thread, a 10,000-instance wave's plugin calls all started in 0.95–1.07 s on the
 * bench machine, with the parse beside them in 0.89–1.0 s (bench/README.md). The answer is the same as
 * {@link parseAlerts} gives here. A job the worker does not answer (it died, or was stopped at
 * close) is parsed in this thread: its sender is waiting, and after a failure of the thread
 * every body is. The worker starts at the first batch and stays, with the code V8 compiled for
 * it: one started again for a wave after a quiet spell parsed that wave's batches more slowly
 * (bench/README.md, "The parse thread through a quiet spell"). It collects its own heap once idle
 * ({@link IDLE_COLLECT_MS}), is started again by the next batch if it ended by itself, and never
 * keeps the process alive. It runs the built module, so core run from its TypeScript sources (the
 * tests) parses in its own thread.
 */
export class OffThreadParser {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;
  /** False without the built worker module, and once the worker failed: bodies are then parsed here. */
  private available: boolean;
  /** Resolves true once the worker takes bodies (its module loaded), false when it failed first. */
  private loaded: Promise<boolean> | undefined;
  private takesBodies = false;
  private workerAnswers = 0;
  private readonly workerUrl: URL;
  private readonly idleCollectMs: number;

  constructor(
    private readonly logger: Logger,
    options: OffThreadParserOptions = {},
  ) {
    this.workerUrl = options.workerUrl ?? WORKER_URL;
    this.idleCollectMs = options.idleCollectMs ?? IDLE_COLLECT_MS;
    this.available = existsSync(fileURLToPath(this.workerUrl));
  }

  /**
   * {@link parseAlerts}, on the worker for a body of {@link OFF_THREAD_MIN_BYTES} or more. The
   * first such body starts the worker and, like every body until the worker has loaded, is parsed
   * here: a wave's first batches do not wait for the thread, and a core that sees no batch starts none.
   */
  parse(format: AlertFormat, body: Buffer, receivedAt: Date, limits: ReceiverLimits): Promise<ParsedAlerts> {
    const parseHere = (): Promise<ParsedAlerts> => parseAlerts(format, body, receivedAt, limits);
    if (body.length < OFF_THREAD_MIN_BYTES || !this.available || this.closed) return parseHere();
    void this.ready();
    const worker = this.worker;
    if (!this.takesBodies || !worker) return parseHere();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { worker, parseHere, resolve, reject });
      worker.postMessage({ id, format, body, receivedAt: receivedAt.getTime(), limits } satisfies ParseJob);
    });
  }

  /** Starts the worker if it is not running; resolves true once it takes bodies, false when it cannot. */
  ready(): Promise<boolean> {
    if (!this.available || this.closed) return Promise.resolve(false);
    return (this.loaded ??= this.start());
  }

  /** Bodies the worker has answered (the others were parsed in this thread). */
  get answeredByWorker(): number {
    return this.workerAnswers;
  }

  /** Whether the worker thread is up (started, and not stopped for idling, failed or closed). */
  get threadRunning(): boolean {
    return this.worker !== undefined;
  }

  /** Stops the worker; what it had not answered is parsed here. */
  async close(): Promise<void> {
    this.closed = true;
    await this.worker?.terminate();
  }

  private start(): Promise<boolean> {
    const worker = new Worker(this.workerUrl, { workerData: { idleCollectMs: this.idleCollectMs } satisfies ParseWorkerData });
    this.worker = worker;
    worker.unref();
    return new Promise((resolve) => {
      worker.on('message', (answer: ParseAnswer | IdleCollection | typeof WORKER_READY) => {
        if (answer === WORKER_READY) {
          this.takesBodies = true;
          return resolve(true);
        }
        if ('collected' in answer) return this.logger.debug(answer.collected, 'the alert-parsing thread idled and collected its heap');
        this.answered(answer);
      });
      // Not started again: a thread that failed once (its module, or memory) would fail every batch, each a log line and a delay.
      worker.on('error', (err) => {
        this.available = false;
        this.logger.error({ err }, 'the alert-parsing thread failed: the bodies it held, and every body from now on, are parsed on the main thread');
      });
      worker.once('exit', (code) => {
        // A thread that ended by itself is started again by the next batch (not after close, nor after a failure).
        if (this.worker === worker) {
          this.worker = undefined;
          this.takesBodies = false;
          this.loaded = undefined;
          if (!this.closed && this.available) this.logger.warn({ exitCode: code }, 'the alert-parsing thread exited; the bodies it held are parsed on the main thread and the next batch starts it again');
        }
        resolve(false);
        for (const [id, { worker: postedTo, parseHere, resolve: answer, reject }] of this.pending) {
          if (postedTo !== worker) continue;
          this.pending.delete(id);
          parseHere().then(answer, reject);
        }
      });
    });
  }

  private answered(answer: ParseAnswer): void {
    const pending = this.pending.get(answer.id);
    if (!pending) return;
    this.pending.delete(answer.id);
    this.workerAnswers++;
    if ('parsed' in answer) {
      const { eventsJson, ...parsed } = answer.parsed;
      return pending.resolve({ ...parsed, events: JSON.parse(eventsJson) as ParsedAlerts['events'] });
    }
    const { error } = answer;
    // A request's refusal keeps its class, so the receiver answers it as it would one refused here; anything else is a failure (500).
    pending.reject('status' in error ? new HttpError(error.status, error.reason, error.message, error.headers, error.accepted) : new Error(error.message));
  }
}
