import type { IncomingMessage } from 'node:http';
import { HttpError } from './http-error.js';

/**
 * Refuses with 415 a request whose body is compressed or otherwise encoded
 * (any `Content-Encoding` but `identity`), naming the coding. Unchecked, a
 * gzipped batch was read as it stood and refused as "not valid UTF-8": a
 * permanent 400 that sent the operator looking at the payload instead of
 * the sender's compression setting (RFC 9110 §8.4.1: 415, with `Accept-Encoding`).
 */
export function requireIdentityEncoding(req: IncomingMessage): void {
  const coding = req.headers['content-encoding'];
  const name = coding?.trim().toLowerCase();
  if (coding === undefined || name === '' || name === 'identity') return;
  throw new HttpError(415, 'unsupported_media_type', `Content-Encoding ${JSON.stringify(coding.slice(0, 100))} is not taken: send the body uncompressed`, { 'accept-encoding': 'identity' });
}
