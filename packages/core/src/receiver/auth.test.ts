import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { beforeEach, describe, expect, it, vi } from 'vitest';

// Every credential check must go through node:crypto's constant-time comparison: a
// recording wrapper around the real function makes that observable (the timing is not).
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});
const compared = vi.mocked(timingSafeEqual);
// Test files share one module graph per worker (vitest.config.ts: isolate false): auth.js may
// already be loaded with the real function, so it is loaded afresh here, under the mock.
vi.resetModules();
const { createAuthenticator } = await import('./auth.js');
beforeEach(() => {
  compared.mockClear();
});

const TOKEN = 's3cret-token';
const request = (authorization?: string): IncomingMessage => ({ headers: authorization === undefined ? {} : { authorization } }) as IncomingMessage;
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

describe('createAuthenticator', () => {
  // Built in each test, not while the file loads: a failure to build must fail a test.
  const both = (req: IncomingMessage): boolean =>
    createAuthenticator({ bearerToken: TOKEN, basic: { username: 'prometheus', password: 'p:ss word' } })(req);

  it('without auth, every request is let in', () => {
    expect(createAuthenticator(undefined)(request())).toBe(true);
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
    const tokenOnly = createAuthenticator({ bearerToken: TOKEN });
    const basicOnly = createAuthenticator({ basic: { username: 'u', password: TOKEN } });
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
});
