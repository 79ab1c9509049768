import type { handleBidiStreamingCall, ServerDuplexStream } from '@grpc/grpc-js';
import { CallSignal } from './call-signal.js';
import { Code, PluginError } from './errors.js';
import type { CallRunner } from './call-runner.js';
import type { HandleCall, HandleStreamRequest, HandleStreamResponse, StreamCall, StreamResult } from './gen/hollowtrees/plugin/v1/plugin.js';

type PluginStream = ServerDuplexStream<HandleStreamRequest, HandleStreamResponse>;

/** One function per open stream that ends it once its calls are answered: what `close()` calls. */
export type OpenStreams = Set<() => void>;

function failure(callId: number, err: unknown): StreamResult {
  const e = PluginError.from(err);
  return { callId, outcome: { $case: 'status', value: { code: e.code, message: e.message } } };
}

/**
 * Serves `HandleStream`: many calls on one stream, each with its id, deadline and cancel.
 * Answers ready within one turn of the event loop go out as one message: gRPC writes a
 * stream's messages one at a time, one per turn, so a message per answer would cap a busy
 * plugin at one answer per turn. Flow control: while `maxInFlight` of the stream's calls run
 * (calls of a message beyond that wait their turn here, at most one message's worth), or
 * while answers wait to be written, the stream is not read; grpc-js then stops taking its
 * data and HTTP/2 flow control makes the sender's `write()` report backpressure.
 */
export function streamHandle(runner: CallRunner, maxInFlight: number, open: OpenStreams): handleBidiStreamingCall<HandleStreamRequest, HandleStreamResponse> {
  return (stream: PluginStream) => {
    const calls = new Map<number, CallSignal>();
    // Calls read but not started yet, with their deadlines counted from when they were read.
    const backlog: Array<{ callId: number; request: HandleCall['request']; deadlineMs: number }> = [];
    let results: StreamResult[] = [];
    let flushScheduled = false;
    let writesBlocked = false;
    let readEnded = false;
    let gone = false;

    const adjustIntake = (): void => {
      if (backlog.length > 0 || calls.size >= maxInFlight || writesBlocked) stream.pause();
      else stream.resume();
    };
    const endWhenDone = (): void => {
      if (readEnded && calls.size === 0 && backlog.length === 0 && results.length === 0 && !gone) stream.end();
    };
    const flush = (): void => {
      flushScheduled = false;
      if (gone || results.length === 0) return;
      const message = { results };
      results = [];
      if (!stream.write(message) && !writesBlocked) {
        writesBlocked = true;
        stream.once('drain', () => {
          writesBlocked = false;
          adjustIntake();
        });
      }
      endWhenDone();
    };
    const answer = (result: StreamResult): void => {
      results.push(result);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    };
    const start = (callId: number, request: HandleCall['request'], deadlineMs: number): void => {
      if (deadlineMs <= Date.now()) return answer(failure(callId, new PluginError(Code.DeadlineExceeded, 'deadline exceeded before the call started')));
      const signal = new CallSignal(deadlineMs);
      signal.armDeadline();
      calls.set(callId, signal);
      runner
        .run(request, signal)
        .then(
          (response) => answer({ callId, outcome: { $case: 'response', value: response } }),
          (err: unknown) => answer(failure(callId, err)),
        )
        .finally(() => {
          calls.delete(callId);
          startWaiting();
          adjustIntake();
          endWhenDone();
        });
    };
    const startWaiting = (): void => {
      while (backlog.length > 0 && calls.size < maxInFlight) {
        const next = backlog.shift()!;
        start(next.callId, next.request, next.deadlineMs);
      }
    };
    const take = ({ callId, kind }: StreamCall): void => {
      if (kind?.$case === 'cancel') {
        const waiting = backlog.findIndex((b) => b.callId === callId);
        if (waiting >= 0) {
          backlog.splice(waiting, 1);
          answer(failure(callId, new PluginError(Code.Canceled, 'call cancelled by the client')));
        }
        return calls.get(callId)?.cancel();
      }
      if (kind?.$case !== 'call') return answer(failure(callId, new PluginError(Code.InvalidArgument, 'stream call has neither a call nor a cancel')));
      if (calls.has(callId) || backlog.some((b) => b.callId === callId)) {
        return answer(failure(callId, new PluginError(Code.InvalidArgument, `call id ${callId} is already in use on this stream`)));
      }
      const { request, timeoutMs } = kind.value;
      backlog.push({ callId, request, deadlineMs: timeoutMs > 0 ? Date.now() + timeoutMs : Infinity });
    };

    stream.on('data', (message: HandleStreamRequest) => {
      for (const call of message.calls) take(call);
      startWaiting();
      adjustIntake();
    });
    // The client's half-close, or the server's close(): no call is read any more.
    const finish = (): void => {
      readEnded = true;
      endWhenDone();
    };
    open.add(finish);
    stream.on('end', finish);
    // The client went away: its calls' handlers are told, and nothing more is written.
    const abandon = (): void => {
      gone = true;
      backlog.length = 0;
      open.delete(finish);
      for (const signal of calls.values()) signal.cancel();
    };
    stream.on('cancelled', abandon);
    stream.on('error', abandon);
    stream.on('finish', () => open.delete(finish));
  };
}
