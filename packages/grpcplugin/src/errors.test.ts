import { runInNewContext } from 'node:vm';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { Code, PluginError, codeName, isRetryable } from './errors.js';

describe('codes', () => {
  it('the retryable ones are exactly UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED and ABORTED', () => {
    const all = Object.values(Code).filter((c): c is Code => typeof c === 'number');
    expect(all).toHaveLength(17);
    expect(all.filter(isRetryable).sort((a, b) => a - b)).toEqual([Code.DeadlineExceeded, Code.ResourceExhausted, Code.Aborted, Code.Unavailable]);
  });

  it('codeName spells every code as grpc-js does, without loading it', () => {
    for (let code = Code.Ok; code <= Code.Unauthenticated; code++) expect(codeName(code)).toBe(status[code]);
    expect([codeName(-1 as Code), codeName(1.5 as Code)]).toEqual(['CODE_-1', 'CODE_1.5']);
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

  it('from() makes a PluginError whose code is no gRPC failure code (OK, outside 1 to 16) INTERNAL, naming the code', () => {
    for (const code of [Code.Ok, 17, -1, 2 ** 31] as Code[]) {
      const cause = new PluginError(code, 'done already');
      expect(PluginError.from(cause)).toMatchObject({ code: Code.Internal, message: `a PluginError with code ${code} (${codeName(code)}), which is no gRPC failure code (1 to 16): done already`, cause });
    }
    for (const code of [Code.Canceled, Code.Unauthenticated]) expect(PluginError.from(new PluginError(code, 'x')).code).toBe(code);
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

describe('PluginError from another copy of the SDK', () => {
  it('a second loaded copy: its errors are PluginErrors here, and from() keeps their code, message and stack', async () => {
    // The query makes the module loader evaluate errors.ts a second time: a second SDK copy, its own class.
    const secondCopy = './errors.js?second-copy';
    const copy = (await import(secondCopy)) as typeof import('./errors.js');
    expect(copy.PluginError).not.toBe(PluginError);
    const foreign = new copy.PluginError(copy.Code.Unavailable, 'drain API down');
    expect(foreign).toBeInstanceOf(PluginError);
    const here = PluginError.from(foreign);
    expect(Object.getPrototypeOf(here)).toBe(PluginError.prototype);
    expect([here.code, here.message, here.retryable, here.stack, here.cause]).toEqual([Code.Unavailable, 'drain API down', true, foreign.stack, foreign]);
    // And the other way round: the copy knows this copy's errors.
    expect(new PluginError(Code.NotFound, 'gone')).toBeInstanceOf(copy.PluginError);
  });

  it('an error of another realm counts by its shape: named PluginError, a numeric code and a message', () => {
    const foreign: unknown = runInNewContext(`Object.assign(new Error('quota'), { name: 'PluginError', code: 8 })`);
    expect(foreign instanceof Error).toBe(false);
    expect(foreign).toBeInstanceOf(PluginError);
    expect(PluginError.from(foreign)).toMatchObject({ code: Code.ResourceExhausted, message: 'quota' });
    for (const lookalike of [new Error('x'), Object.assign(new Error('x'), { name: 'PluginError' }), Object.assign(new Error('x'), { name: 'PluginError', code: '14' }), null, 'PluginError']) {
      expect(lookalike instanceof PluginError).toBe(false);
    }
  });

  it('a code that is no whole gRPC code is explained, whichever copy threw it', async () => {
    const secondCopy = './errors.js?second-copy';
    const copy = (await import(secondCopy)) as typeof import('./errors.js');
    const foreign: unknown = runInNewContext(`Object.assign(new Error('half'), { name: 'PluginError', code: 14.5 })`);
    for (const odd of [new PluginError(14.5 as Code, 'half'), new copy.PluginError(14.5 as Code, 'half'), foreign]) {
      expect(odd).toBeInstanceOf(PluginError);
      const sent = PluginError.from(odd);
      expect(sent.code).toBe(Code.Internal);
      expect(sent.message).toBe('a PluginError with code 14.5 (CODE_14.5), which is no gRPC failure code (1 to 16): half');
    }
  });

  it('a subclass keeps the ordinary prototype check', () => {
    class DrainError extends PluginError {}
    expect(new DrainError(Code.Aborted, 'conflict')).toBeInstanceOf(DrainError);
    expect(new PluginError(Code.Aborted, 'conflict')).not.toBeInstanceOf(DrainError);
  });
});
