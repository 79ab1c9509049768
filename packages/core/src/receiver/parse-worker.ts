/**
 * The entry of the thread that parses large alert bodies ({@link OffThreadParser}): each job is a
 * body, its format, the time it was received and the limits; each answer the parsed request, or
 * the request's HttpError as plain fields (an error's class does not cross threads). Once it has
 * idled for {@link ParseWorkerData.idleCollectMs} after an answer, it collects its heap and says so.
 */
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { fullCollection } from './full-collection.js';
import { HttpError } from './http-error.js';
import { parseAlerts } from './parse-alerts.js';
import { WORKER_READY, type IdleCollection, type ParseAnswer, type ParseJob, type ParseWorkerData } from './off-thread-parser.js';

const port = parentPort!;
const { idleCollectMs } = workerData as ParseWorkerData;
const collect = fullCollection();
let idleTimer: NodeJS.Timeout | undefined;

const collectIdle = (): void => {
  const heapUsedBefore = getHeapStatistics().used_heap_size;
  collect();
  port.postMessage({ collected: { heapUsedBefore, heapUsedAfter: getHeapStatistics().used_heap_size } } satisfies IdleCollection);
};

port.on('message', (job: ParseJob) => {
  clearTimeout(idleTimer);
  const body = Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength);
  const answer = (message: ParseAnswer): void => {
    port.postMessage(message);
    clearTimeout(idleTimer);
    idleTimer = setTimeout(collectIdle, idleCollectMs);
  };
  parseAlerts(job.format, body, new Date(job.receivedAt), job.limits).then(
    ({ events, ...parsed }) => answer({ id: job.id, parsed: { ...parsed, eventsJson: JSON.stringify(events) } }),
    (err: unknown) =>
      answer({ id: job.id, error: err instanceof HttpError ? { status: err.status, reason: err.reason, message: err.message, headers: err.headers, accepted: err.accepted } : { message: String(err) } }),
  );
});
port.postMessage(WORKER_READY);
