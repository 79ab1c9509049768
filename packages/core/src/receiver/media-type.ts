import type { IncomingMessage } from 'node:http';
import { MIMEType } from 'node:util';
import { HttpError } from './http-error.js';

/**
 * Refuses with 415 a request whose Content-Type is not `application/json`
 * (parameters such as `charset` allowed). A web page can make a browser send
 * `text/plain`, form and multipart bodies cross-site without a CORS preflight;
 * `application/json` needs one, and the preflight gets 405.
 */
export function requireJson(req: IncomingMessage): void {
  const header = req.headers['content-type'];
  if (header === undefined) throw new HttpError(415, 'unsupported_media_type', 'Content-Type must be application/json; the request has none');
  let essence: string | undefined;
  try {
    essence = new MIMEType(header).essence;
  } catch {
    // not a media type at all: refused below like any other
  }
  if (essence !== 'application/json') throw new HttpError(415, 'unsupported_media_type', `Content-Type must be application/json, got ${JSON.stringify(header.slice(0, 100))}`);
}
