import type { IncomingMessage } from 'node:http';

/** Bodies beyond this are refused: no real query or SQS request comes near it (SQS caps a message at 256 KiB). */
const MAX_BODY_BYTES = 1024 * 1024;

/** Reads a request body as UTF-8; a body over 1 MiB destroys the request. */
export function readRequestBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) req.destroy(new Error('request body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
