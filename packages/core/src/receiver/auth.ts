import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { readNamedFile } from '../config/read-named-file.js';
import type { AuthConfig } from '../config/schema.js';

/** Decides whether a request carries valid credentials. */
export type Authenticator = (req: IncomingMessage) => boolean;

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/** Equal-length digests make the comparison constant-time whatever the lengths of the inputs. */
function constantTimeEquals(expected: Buffer, actual: string): boolean {
  return timingSafeEqual(expected, digest(actual));
}

function readSecret(file: string, path: string, configFile: string): string {
  return readNamedFile(file, configFile, path).toString('utf8').trim();
}

/**
 * Builds the receiver's authenticator: a bearer token and/or basic auth, either
 * one accepted. Secrets are read once here and only kept as digests.
 */
export function createAuthenticator(auth: AuthConfig | undefined, configFile: string): Authenticator {
  if (!auth) return () => true;
  const token = auth.bearerToken ?? (auth.bearerTokenFile ? readSecret(auth.bearerTokenFile, 'server.auth.bearerTokenFile', configFile) : undefined);
  const tokenDigest = token === undefined ? undefined : digest(token);
  const basic = auth.basic;
  const password = basic ? (basic.password ?? readSecret(basic.passwordFile!, 'server.auth.basic.passwordFile', configFile)) : undefined;
  const basicDigest = basic ? digest(`${basic.username}:${password}`) : undefined;

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
