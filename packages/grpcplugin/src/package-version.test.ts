import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { packageVersion } from './package-version.js';

const dir = mkdtempSync(join(tmpdir(), 'package-version-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A package at `dir/name` with `manifest` as its package.json; answers the URL of its `dist/cli.js`, as a bin sees it. */
function packageWith(name: string, manifest: unknown): string {
  mkdirSync(join(dir, name, 'dist'), { recursive: true });
  writeFileSync(join(dir, name, 'package.json'), JSON.stringify(manifest));
  return pathToFileURL(join(dir, name, 'dist', 'cli.js')).href;
}

describe('packageVersion', () => {
  it('reads the version of the package whose dist/ holds the calling module', () => {
    expect(packageVersion(packageWith('bin', { name: 'bin', version: '1.2.3' }))).toBe('1.2.3');
  });

  it('refuses a package.json without a version, naming the file', () => {
    expect(() => packageVersion(packageWith('none', { name: 'none' }))).toThrow(/package\.json has no version/);
  });
});
