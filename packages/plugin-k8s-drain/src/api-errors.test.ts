import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { ApiException, FetchError } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { isTransient, toPluginError } from './api-errors.js';
import { DeadlineReachedError } from './deadline.js';

const refusal = (code: number, body: unknown): ApiException<unknown> => new ApiException(code, `HTTP ${code}`, body, {});
const status = (message: string | undefined, code: number): string => JSON.stringify({ kind: 'Status', status: 'Failure', message, code });

describe('toPluginError', () => {
  it.each([
    [401, Code.Unauthenticated],
    [403, Code.PermissionDenied],
    [404, Code.NotFound],
    [409, Code.Aborted],
    [429, Code.ResourceExhausted],
    [400, Code.Internal],
    [422, Code.Internal],
    [499, Code.Internal],
    [500, Code.Unavailable],
    [503, Code.Unavailable],
  ])('maps HTTP %i to %s, with the Status message after what was being done', (http, code) => {
    const err = refusal(http, status('the reason', http));
    const mapped = toPluginError(err, 'cordoning node n1');
    expect([mapped.code, mapped.message, mapped.cause]).toEqual([code, 'cordoning node n1: the reason', err]);
  });

  it('reads the message from a body already parsed, the trimmed text of one that is not JSON, and falls back to the HTTP code', () => {
    const doing = 'evicting pod apps/p';
    expect(toPluginError(refusal(429, { message: 'parsed already' }), doing).message).toBe(`${doing}: parsed already`);
    expect(toPluginError(refusal(502, '  upstream connect error\n'), doing).message).toBe(`${doing}: upstream connect error`);
    expect(toPluginError(refusal(502, ' \n'), doing).message).toBe(`${doing}: HTTP 502`);
    expect(toPluginError(refusal(409, status(undefined, 409)), doing).message).toBe(`${doing}: HTTP 409`);
    expect(toPluginError(refusal(409, status('', 409)), doing).message).toBe(`${doing}: HTTP 409`);
    expect(toPluginError(refusal(500, 'null'), doing).message).toBe(`${doing}: HTTP 500`);
    expect(toPluginError(refusal(500, JSON.stringify({ message: 42 })), doing).message).toBe(`${doing}: HTTP 500`);
  });

  it('answers the drain deadline as DEADLINE_EXCEEDED', () => {
    const err = new DeadlineReachedError(0);
    const mapped = toPluginError(err, 'listing pods on node n1');
    expect([mapped.code, mapped.message, mapped.cause]).toEqual([Code.DeadlineExceeded, 'listing pods on node n1: the drain deadline was reached', err]);
  });

  it('answers network errors as UNAVAILABLE, and passes a PluginError through as it is', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });
    expect([toPluginError(refused, 'reading node n1').code, toPluginError(refused, 'reading node n1').message]).toEqual([
      Code.Unavailable,
      'reading node n1: cannot reach the Kubernetes API: connect ECONNREFUSED 127.0.0.1:6443',
    ]);
    expect(toPluginError(refused, 'reading node n1').cause).toBe(refused);
    const fetchFailed = new FetchError('request to https://k8s/api failed, reason: socket hang up', 'system');
    expect(toPluginError(fetchFailed, 'reading node n1').code).toBe(Code.Unavailable);
    const own = new PluginError(Code.FailedPrecondition, 'no time left');
    expect(toPluginError(own, 'reading node n1')).toBe(own);
  });

  it('does not take an error whose code is not a system error code for a network error', () => {
    for (const err of [Object.assign(new Error('weird'), { code: 'INVALID' }), Object.assign(new Error('numeric'), { code: 5 }), new Error('plain')]) {
      expect(toPluginError(err, 'reading node n1').code).toBe(Code.Internal);
    }
  });
});

describe('isTransient', () => {
  it.each([
    [Code.Unavailable, true],
    [Code.ResourceExhausted, true],
    [Code.Aborted, true],
    [Code.NotFound, false],
    [Code.PermissionDenied, false],
    [Code.DeadlineExceeded, false],
    [Code.Internal, false],
  ])('%s: %s', (code, transient) => {
    expect(isTransient(new PluginError(code, 'x'))).toBe(transient);
  });
});
