import { readFileSync } from 'node:fs';
import { ConfigError } from './config-error.js';

/**
 * Reads a file the configuration names (a certificate, a key, a secret); a file
 * that cannot be read is a {@link ConfigError} at `path`, e.g. `server.tls.cert`.
 */
export function readNamedFile(file: string, configFile: string, path: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(configFile, [{ path, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
}
