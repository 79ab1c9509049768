import type { IncomingMessage } from 'node:http';
import { formatDuration } from '@hollowtrees/grpcplugin/without-grpc';
import { HttpError } from './http-error.js';

/** The 413 of a body over `limit` bytes: the receiver's answer, and what `hollowtrees explain` says of such input. */
export function bodyTooLarge(limit: number): HttpError {
  return new HttpError(413, 'too_large', `request body is larger than the limit of ${limit} bytes`);
}

/**
 * Reads the request body, refusing with 413 as soon as it passes `limit`
 * bytes (by Content-Length when sent, by counting otherwise), and with 408
 * when it is not complete within `timeoutMs`. It settles however the request
 * ends (complete, failed, closed or stalled), so the caller's slot comes back.
 */
export function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(bodyTooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // The first outcome wins, and takes every listener off: 'close' follows every 'end', and must
    // not build an error (a stack trace per request) for a promise already settled.
    const settle = (): void => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('error', endedEarly);
      req.off('close', endedEarly);
    };
    const fail = (error: HttpError): void => {
      settle();
      reject(error);
    };
    const timer = setTimeout(() => fail(new HttpError(408, 'timeout', `request body not complete within ${formatDuration(timeoutMs)}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) return fail(bodyTooLarge(limit));
      chunks.push(chunk);
    };
    const endedEarly = (): void => fail(new HttpError(400, 'bad_data', 'request body ended early: the client closed the connection'));
    req.on('data', onData);
    req.once('end', () => {
      settle();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    req.once('error', endedEarly);
    req.once('close', endedEarly);
  });
}
