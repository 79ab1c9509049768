import { getEventListeners } from 'node:events';
import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { describe, expect, it } from 'vitest';
import { abortReason, timeoutSignal, untilAborted } from './abortable.js';

const rejected = (p: Promise<unknown>): Promise<unknown> => p.then(() => 'resolved', (err: unknown) => err);

describe('untilAborted', () => {
  it('settles as the work does, and stops listening to the signal once it has', async () => {
    const controller = new AbortController();
    expect(await untilAborted(Promise.resolve(42), controller.signal)).toBe(42);
    const failure = new Error('work failed');
    expect(await rejected(untilAborted(Promise.reject(failure), controller.signal))).toBe(failure);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('rejects with the abort reason as soon as the signal aborts, however long the work takes', async () => {
    const controller = new AbortController();
    const waiting = rejected(untilAborted(new Promise(() => {}), controller.signal));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    const deadline = new PluginError(Code.DeadlineExceeded, 'the call has passed its deadline');
    controller.abort(deadline);
    expect(await waiting).toBe(deadline);
  });

  it('rejects at once when the signal has already aborted, without waiting for the work', async () => {
    const err = await rejected(untilAborted(new Promise(() => {}), AbortSignal.abort(new PluginError(Code.Canceled, 'gone'))));
    expect(err).toBeInstanceOf(PluginError);
    expect((err as PluginError).message).toBe('gone');
  });
});

describe('abortReason', () => {
  it('keeps a PluginError reason, and makes any other reason CANCELLED with it as the cause', () => {
    const own = new PluginError(Code.DeadlineExceeded, 'late');
    expect(abortReason(AbortSignal.abort(own))).toBe(own);
    const foreign = new Error('shutting down');
    const mapped = abortReason(AbortSignal.abort(foreign));
    expect([mapped.code, mapped.message, mapped.cause]).toEqual([Code.Canceled, 'cancelled', foreign]);
  });
});

describe('timeoutSignal', () => {
  it('aborts after its time with UNAVAILABLE naming what took too long', async () => {
    const signal = timeoutSignal(20, 'EC2 DescribeInstances');
    expect(signal.aborted).toBe(false);
    await new Promise((resolve) => signal.addEventListener('abort', resolve));
    const reason = signal.reason as PluginError;
    expect(reason).toBeInstanceOf(PluginError);
    expect([reason.code, reason.message]).toEqual([Code.Unavailable, 'EC2 DescribeInstances did not finish within 20 ms']);
  });
});
