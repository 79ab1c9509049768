import type { IncomingMessage } from 'node:http';
import { HttpError } from './http-error.js';

/** The 415 for a body encoded with `header`'s `value`, which core does not decode. */
function notDecoded(header: string, value: string): HttpError {
  return new HttpError(415, 'unsupported_media_type', `${header} ${JSON.stringify(value.slice(0, 100))} is not taken: send the body uncompressed`, { 'accept-encoding': 'identity' });
}

/**
 * Refuses with 415 a request whose body is compressed or otherwise encoded
 * (any `Content-Encoding` but `identity`, or a transfer coding besides
 * `chunked`, such as `Transfer-Encoding: gzip, chunked`, which Node's parser
 * takes but does not decode), naming the coding. Unchecked, a gzipped batch
 * was read as it stood and refused as "not valid UTF-8": a permanent 400 that
 * sent the operator looking at the payload instead of the sender's compression
 * setting (RFC 9110 §8.4.1: 415, with `Accept-Encoding`). Nothing is inflated,
 * so a compressed bomb costs no more than its bytes on the wire.
 */
export function requireIdentityEncoding(req: IncomingMessage): void {
  const coding = req.headers['content-encoding'];
  const name = coding?.trim().toLowerCase();
  if (coding !== undefined && name !== '' && name !== 'identity') throw notDecoded('Content-Encoding', coding);
  const transfer = req.headers['transfer-encoding'];
  if (transfer === undefined) return;
  const codings = transfer.split(',').map((c) => c.trim().toLowerCase());
  // Only a list that ends in chunked frames a body Node reads (any other is its parser's 400); chunked alone is only framing.
  if (codings.length > 1 && codings.at(-1) === 'chunked') throw notDecoded('Transfer-Encoding', transfer);
}
