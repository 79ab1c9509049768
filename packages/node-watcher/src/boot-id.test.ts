import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBootId } from './boot-id.js';

const file = (text: string): string => {
  const path = join(mkdtempSync(join(tmpdir(), 'boot-id-')), 'boot_id');
  writeFileSync(path, text);
  return path;
};

describe('readBootId', () => {
  it('reads the UUID the kernel writes, without its newline', () => {
    expect(readBootId(file('3f1c2a9e-8d47-4b6f-9a2e-5c7d1e0b4a61\n'))).toBe('3f1c2a9e-8d47-4b6f-9a2e-5c7d1e0b4a61');
  });

  it('is undefined where there is no such file (not Linux), or it holds no UUID', () => {
    expect(readBootId(join(tmpdir(), 'no-such-dir-for-boot-id', 'boot_id'))).toBeUndefined();
    expect(readBootId(file(''))).toBeUndefined();
    expect(readBootId(file('3f1c2a9e-8d47-4b6f-9a2e-5c7d1e0b4a6\n'))).toBeUndefined();
    expect(readBootId(file('x3f1c2a9e-8d47-4b6f-9a2e-5c7d1e0b4a61'))).toBeUndefined();
    expect(readBootId(file('3f1c2a9e-8d47-4b6f-9a2e-5c7d1e0b4a61x'))).toBeUndefined();
  });

  it("reads this machine's boot id from /proc on Linux", () => {
    if (process.platform !== 'linux') return;
    expect(readBootId()).toMatch(/^[0-9a-f-]{36}$/);
  });
});
