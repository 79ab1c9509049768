/**
 * The entry of the thread that parses large alert bodies ({@link OffThreadParser}): each job is a
 * body, its format, the time it was received and the limits; each answer the parsed request, or
 * the request's HttpError as plain fields (an error's class does not cross threads).
 */
import { parentPort } from 'node:worker_threads';
import { HttpError } from './http-error.js';
import { parseAlerts } from './parse-alerts.js';
import { WORKER_READY, type ParseAnswer, type ParseJob } from './off-thread-parser.js';

const port = parentPort!;
port.on('message', (job: ParseJob) => {
  const body = Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength);
  const answer = (message: ParseAnswer): void => port.postMessage(message);
  parseAlerts(job.format, body, new Date(job.receivedAt), job.limits).then(
    ({ events, ...parsed }) => answer({ id: job.id, parsed: { ...parsed, eventsJson: JSON.stringify(events) } }),
    (err: unknown) =>
      answer({ id: job.id, error: err instanceof HttpError ? { status: err.status, reason: err.reason, message: err.message, headers: err.headers, accepted: err.accepted } : { message: String(err) } }),
  );
});
port.postMessage(WORKER_READY);
