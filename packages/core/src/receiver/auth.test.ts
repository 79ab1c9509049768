import { createHash, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../config/config-error.js';
import { createAuthenticator } from './auth.js';

// Every credential check must go through node:crypto's constant-time comparison: a
// recording wrapper around the real function makes that observable (the timing is not).
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});
const compared = vi.mocked(timingSafeEqual);
beforeEach(() => {
  compared.mockClear();
});

const TOKEN = 's3cret-token';
const request = (authorization?: string): IncomingMessage => ({ headers: authorization === undefined ? {} : { authorization } }) as IncomingMessage;
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();
const dir = mkdtempSync(join(tmpdir(), 'hollowtrees-auth-'));
const file = (name: string, text: string): string => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};

describe('createAuthenticator', () => {
  // Built in each test, not while the file loads: a failure to build must fail a test.
  const both = (req: IncomingMessage): boolean =>
    createAuthenticator({ bearerToken: TOKEN, basic: { username: 'prometheus', password: 'p:ss word' } }, 'config.yaml')(req);

  it('without auth, every request is let in', () => {
    expect(createAuthenticator(undefined, 'config.yaml')(request())).toBe(true);
  });

  it.each([
    ['the token', `Bearer ${TOKEN}`],
    ['the token, scheme in any case and spaces around the token', `bEARER   ${TOKEN} `],
    ['basic credentials (a colon in the password is part of it)', basic('prometheus', 'p:ss word')],
    ['basic credentials, scheme in capitals', basic('prometheus', 'p:ss word').replace('Basic', 'BASIC')],
  ])('lets in %s', (_name, header) => {
    expect(both(request(header))).toBe(true);
  });

  it.each([
    ['no Authorization header', undefined],
    ['an empty header', ''],
    ['a scheme alone', 'Bearer'],
    ['a wrong token', `Bearer ${TOKEN}x`],
    ['a prefix of the token', 'Bearer s3cret'],
    ['the token under another scheme', `Token ${TOKEN}`],
    ['the token as basic credentials', `Basic ${TOKEN}`],
    ['a wrong password', basic('prometheus', 'p:ss')],
    ['a wrong user', basic('grafana', 'p:ss word')],
    ['basic credentials as a token', `Bearer ${basic('prometheus', 'p:ss word').slice(6)}`],
    ['basic credentials under another scheme', basic('prometheus', 'p:ss word').replace('Basic', 'Digest')],
  ])('refuses %s', (_name, header) => {
    expect(both(request(header))).toBe(false);
  });

  it('a scheme that is not configured is refused, even with the right secret', () => {
    const tokenOnly = createAuthenticator({ bearerToken: TOKEN }, 'config.yaml');
    const basicOnly = createAuthenticator({ basic: { username: 'u', password: TOKEN } }, 'config.yaml');
    expect([tokenOnly(request(`Bearer ${TOKEN}`)), tokenOnly(request(basic('u', TOKEN)))]).toEqual([true, false]);
    expect([basicOnly(request(basic('u', TOKEN))), basicOnly(request(`Bearer ${TOKEN}`)), basicOnly(request(`Bearer u:${TOKEN}`))]).toEqual([true, false, false]);
  });

  it('compares every candidate in constant time: SHA-256 digests of equal length, through crypto.timingSafeEqual', () => {
    for (const candidate of [TOKEN, 'x', `${TOKEN}-and-much-longer-than-the-token`, '']) {
      compared.mockClear();
      both(request(`Bearer ${candidate}`));
      expect(compared).toHaveBeenCalledTimes(1);
      expect(compared.mock.calls[0]).toEqual([sha256(TOKEN), sha256(candidate)]);
    }
    compared.mockClear();
    both(request(basic('grafana', 'nope')));
    expect(compared.mock.calls).toEqual([[sha256('prometheus:p:ss word'), sha256('grafana:nope')]]);
  });

  it('reads the token and the password from files, without surrounding whitespace', () => {
    const fromFiles = createAuthenticator(
      { bearerTokenFile: file('token', `${TOKEN}\n`), basic: { username: 'prometheus', passwordFile: file('password', ' hunter2 \n') } },
      'config.yaml',
    );
    expect([fromFiles(request(`Bearer ${TOKEN}`)), fromFiles(request(basic('prometheus', 'hunter2')))]).toEqual([true, true]);
  });

  it.each([
    [{ bearerTokenFile: join(dir, 'missing-token') }, 'server.auth.bearerTokenFile'],
    [{ basic: { username: 'u', passwordFile: join(dir, 'missing-password') } }, 'server.auth.basic.passwordFile'],
  ])('a secret file that cannot be read is a ConfigError at its path', (auth, path) => {
    expect(() => createAuthenticator(auth, 'config.yaml')).toThrow(ConfigError);
    expect(() => createAuthenticator(auth, 'config.yaml')).toThrow(`config.yaml: ${path}: cannot read ${dir}/missing-`);
  });
});
