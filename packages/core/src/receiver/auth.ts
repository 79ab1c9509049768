import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ReceiverCredentials } from '../config/config-files.js';

/** Decides whether a request carries valid credentials. */
export type Authenticator = (req: IncomingMessage) => boolean;

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/** Equal-length digests make the comparison constant-time whatever the lengths of the inputs. */
function constantTimeEquals(expected: Buffer, actual: string): boolean {
  return timingSafeEqual(expected, digest(actual));
}

/**
 * Builds the receiver's authenticator: a bearer token and/or basic auth, either
 * one accepted; without credentials, every request. Secrets are only kept as digests.
 */
export function createAuthenticator(credentials: ReceiverCredentials | undefined): Authenticator {
  if (!credentials) return () => true;
  const tokenDigest = credentials.bearerToken === undefined ? undefined : digest(credentials.bearerToken);
  const basic = credentials.basic;
  const basicDigest = basic ? digest(`${basic.username}:${basic.password}`) : undefined;

  return (req) => {
    const header = req.headers.authorization;
    if (!header) return false;
    const space = header.indexOf(' ');
    const scheme = header.slice(0, space).toLowerCase();
    const value = header.slice(space + 1).trim();
    if (scheme === 'bearer' && tokenDigest) return constantTimeEquals(tokenDigest, value);
    if (scheme === 'basic' && basicDigest) return constantTimeEquals(basicDigest, Buffer.from(value, 'base64').toString('utf8'));
    return false;
  };
}
