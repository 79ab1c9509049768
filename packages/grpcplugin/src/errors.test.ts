import { describe, expect, it } from 'vitest';
import { Code, PluginError, codeName, isRetryable } from './errors.js';

describe('codes', () => {
  it('the retryable ones are exactly UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED and ABORTED', () => {
    const all = Object.values(Code).filter((c): c is Code => typeof c === 'number');
    expect(all).toHaveLength(17);
    expect(all.filter(isRetryable).sort((a, b) => a - b)).toEqual([Code.DeadlineExceeded, Code.ResourceExhausted, Code.Aborted, Code.Unavailable]);
  });

  it.each([
    [Code.Ok, 'OK'],
    [Code.Canceled, 'CANCELLED'],
    [Code.DeadlineExceeded, 'DEADLINE_EXCEEDED'],
    [Code.ResourceExhausted, 'RESOURCE_EXHAUSTED'],
    [Code.Unavailable, 'UNAVAILABLE'],
    [42 as Code, 'CODE_42'],
  ])('codeName(%i) is %s', (code, name) => {
    expect(codeName(code)).toBe(name);
  });
});

describe('PluginError', () => {
  it('names itself, so logs and String() say what it is', () => {
    const err = new PluginError(Code.NotFound, 'no such instance');
    expect(err.name).toBe('PluginError');
    expect(String(err)).toBe('PluginError: no such instance');
    expect([err.code, err.retryable]).toEqual([Code.NotFound, false]);
    expect(new PluginError(Code.Aborted, 'conflict').retryable).toBe(true);
  });

  it('from() keeps a PluginError as it is', () => {
    const err = new PluginError(Code.Unavailable, 'down');
    expect(PluginError.from(err)).toBe(err);
  });

  it('from() makes any other Error INTERNAL with its message, keeping it as the cause', () => {
    const cause = new TypeError('boom');
    const err = PluginError.from(cause);
    expect([err.code, err.message, err.cause]).toEqual([Code.Internal, 'boom', cause]);
  });

  it('from() names an Error without a message by its name, and stringifies anything else', () => {
    expect(PluginError.from(new RangeError()).message).toBe('RangeError');
    expect(PluginError.from(42)).toMatchObject({ code: Code.Internal, message: '42' });
  });
});
