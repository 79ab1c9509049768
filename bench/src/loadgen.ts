/**
 * The load generator, run in its own process (`fork`) so that its CPU is not
 * shared with the event loop of anything it measures. It keeps `connections`
 * keep-alive connections busy with one request in flight each, every request
 * carrying `batch` alerts for instances never sent before (distinct groups),
 * and reports what it achieved together with its own CPU usage.
 */
import { fork } from 'node:child_process';
import { Agent, request } from 'node:http';
import { alertsBody } from './alerts.js';

export interface LoadOptions {
  /** e.g. `http://127.0.0.1:9093/api/v2/alerts` */
  url: string;
  connections: number;
  batch: number;
  warmupMs: number;
  durationMs: number;
  /** Instance-id prefix, distinct per run so groups never repeat. */
  prefix: string;
}

export interface LoadResult {
  /** Requests and alerts answered 2xx inside the measured window. */
  requests: number;
  alerts: number;
  alertsPerSecond: number;
  /** Non-2xx answers or transport errors inside the window. */
  errors: number;
  seconds: number;
  /** The generator's own CPU (user + system) over the window, in % of one core. */
  cpuPercent: number;
  /** Mean request round trip, ms. */
  meanRequestMs: number;
}

/** Where the generator is in its run: the measured window opened, or closed. */
export type LoadMark = 'window-start' | 'window-end';

/** Runs the generator in-process, telling `mark` when its measured window opens and closes: only the forked child calls this. */
async function generate(options: LoadOptions, mark: (at: LoadMark) => void): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const target = new URL(options.url);
  let next = 0;
  let measuring = false;
  let stopped = false;
  let requests = 0;
  let errors = 0;
  let latencySum = 0;

  const send = (body: string): Promise<number> =>
    new Promise((resolve) => {
      const req = request(
        { agent, host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          res.on('data', () => {});
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', () => resolve(0));
      req.end(body);
    });

  const worker = async (): Promise<void> => {
    while (!stopped) {
      const first = next;
      next += options.batch;
      const body = alertsBody(options.prefix, first, options.batch);
      const started = performance.now();
      const status = await send(body);
      if (!measuring || stopped) continue;
      if (status >= 200 && status < 300) {
        requests++;
        latencySum += performance.now() - started;
      } else errors++;
    }
  };

  const workers = Array.from({ length: options.connections }, () => worker());
  await new Promise((r) => setTimeout(r, options.warmupMs));
  measuring = true;
  mark('window-start');
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  await new Promise((r) => setTimeout(r, options.durationMs));
  const seconds = (performance.now() - wallStart) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  stopped = true;
  mark('window-end');
  await Promise.all(workers);
  agent.destroy();
  return {
    requests,
    alerts: requests * options.batch,
    alertsPerSecond: (requests * options.batch) / seconds,
    errors,
    seconds,
    cpuPercent: ((cpu.user + cpu.system) / 1e6 / seconds) * 100,
    meanRequestMs: requests ? latencySum / requests : Number.NaN,
  };
}

/**
 * Forks a generator process, runs `options` and resolves with its report. `onMark` hears when the
 * measured window opens and closes (as soon as the child says so), so that a caller can count what
 * the target did inside the same window as the rate (its actions, say).
 */
export function runLoad(options: LoadOptions, onMark?: (at: LoadMark) => void): Promise<LoadResult> {
  const child = fork(new URL(import.meta.url).pathname, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.on('message', (message: { mark: LoadMark } | LoadResult) => {
      if ('mark' in message) return onMark?.(message.mark);
      resolve(message);
      child.disconnect();
    });
    child.once('exit', (code) => reject(new Error(`load generator exited with ${code} before reporting`)));
    child.send(options);
  });
}

if (process.send && process.argv[1] === new URL(import.meta.url).pathname) {
  process.once('message', (options) => {
    void generate(options as LoadOptions, (mark) => process.send!({ mark })).then((result) => process.send!(result));
  });
}
