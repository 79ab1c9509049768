import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from './config-error.js';
import { readNamedFile } from './read-named-file.js';

const dir = mkdtempSync(join(tmpdir(), 'hollowtrees-named-'));

describe('readNamedFile', () => {
  it('returns the bytes of the file', () => {
    writeFileSync(join(dir, 'cert.pem'), 'PEM\n');
    expect(readNamedFile(join(dir, 'cert.pem'), 'config.yaml', 'server.tls.cert').toString()).toBe('PEM\n');
  });

  it.each([
    ['a missing file', join(dir, 'missing.pem'), 'ENOENT'],
    ['a directory', dir, 'EISDIR'],
  ])('%s is a ConfigError naming the config file, the path, the file and the reason', (_name, file, reason) => {
    let thrown: unknown;
    try {
      readNamedFile(file, 'config.yaml', 'server.tls.cert');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect(thrown).toMatchObject({ name: 'ConfigError', file: 'config.yaml', problems: [{ path: 'server.tls.cert', message: `cannot read ${file}: ${reason}` }] });
    expect((thrown as Error).message).toBe(`config.yaml: server.tls.cert: cannot read ${file}: ${reason}`);
  });
});
