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

/** The worker's answer to a {@link ParseJob}: the parsed request, or why the request is refused. */
export type ParseAnswer =
  | { id: number; parsed: ParsedAlerts }
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

/** A body handed to the worker, and how to parse it here instead. */
interface Pending {
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
 * every body is. The worker starts at the first batch and never keeps the process alive. It
 * runs the built module, so core run from its TypeScript sources (the tests) parses in its own
 * thread.
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

  /** @param workerUrl the worker's module (tests give one that fails). */
  constructor(
    private readonly logger: Logger,
    private readonly workerUrl: URL = WORKER_URL,
  ) {
    this.available = existsSync(fileURLToPath(workerUrl));
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
      this.pending.set(id, { parseHere, resolve, reject });
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

  /** Stops the worker; what it had not answered is parsed here. */
  async close(): Promise<void> {
    this.closed = true;
    await this.worker?.terminate();
  }

  private start(): Promise<boolean> {
    const worker = new Worker(this.workerUrl);
    this.worker = worker;
    worker.unref();
    return new Promise((resolve) => {
      worker.on('message', (answer: ParseAnswer | typeof WORKER_READY) => {
        if (answer !== WORKER_READY) return this.answered(answer);
        this.takesBodies = true;
        resolve(true);
      });
      // Not started again: a thread that failed once (its module, or memory) would fail every batch, each a log line and a delay.
      worker.on('error', (err) => {
        this.available = false;
        this.logger.error({ err }, 'the alert-parsing thread failed: the bodies it held, and every body from now on, are parsed on the main thread');
      });
      worker.once('exit', () => {
        this.worker = undefined;
        this.takesBodies = false;
        this.loaded = undefined;
        resolve(false);
        for (const [id, { parseHere, resolve: answer, reject }] of this.pending) {
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
    if ('parsed' in answer) return pending.resolve(answer.parsed);
    const { error } = answer;
    // A request's refusal keeps its class, so the receiver answers it as it would one refused here; anything else is a failure (500).
    pending.reject('status' in error ? new HttpError(error.status, error.reason, error.message, error.headers, error.accepted) : new Error(error.message));
  }
}
