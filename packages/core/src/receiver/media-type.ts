import type { IncomingMessage } from 'node:http';
import { MIMEType } from 'node:util';
import { HttpError } from './http-error.js';

/** The request's media type without parameters (`application/json`), lower case; undefined when it has none or it is no media type. */
export function mediaTypeOf(req: IncomingMessage): string | undefined {
  const header = req.headers['content-type'];
  if (header === undefined) return undefined;
  try {
    return new MIMEType(header).essence;
  } catch {
    return undefined;
  }
}

/** The 415 for a request whose Content-Type is not what the path takes (`expected`, in words). */
export function unsupportedMediaType(req: IncomingMessage, expected: string): HttpError {
  const header = req.headers['content-type'];
  return new HttpError(415, 'unsupported_media_type', `Content-Type must be ${expected}${header === undefined ? '; the request has none' : `, got ${JSON.stringify(header.slice(0, 100))}`}`);
}

/**
 * Refuses with 415 a request whose Content-Type is not `application/json`
 * (parameters such as `charset` allowed). A web page can make a browser send
 * `text/plain`, form and multipart bodies cross-site without a CORS preflight;
 * `application/json` needs one, and the preflight gets 405.
 */
export function requireJson(req: IncomingMessage): void {
  if (mediaTypeOf(req) !== 'application/json') throw unsupportedMediaType(req, 'application/json');
}
