import type { handleBidiStreamingCall, ServerDuplexStream } from '@grpc/grpc-js';
import { CallSignal } from './call-signal.js';
import { Code, PluginError } from './errors.js';
import type { CallRunner } from './call-runner.js';
import type { HandleStreamRequest, HandleStreamResponse } from './gen/hollowtrees/plugin/v1/plugin.js';

type PluginStream = ServerDuplexStream<HandleStreamRequest, HandleStreamResponse>;

/** One function per open stream that ends it once its calls are answered: what `close()` calls. */
export type OpenStreams = Set<() => void>;

function failure(callId: number, err: unknown): HandleStreamResponse {
  const e = PluginError.from(err);
  return { callId, outcome: { $case: 'status', value: { code: e.code, message: e.message } } };
}

/**
 * Serves `HandleStream`: many calls on one stream, each with its id, deadline and cancel.
 * Flow control: while `maxInFlight` of the stream's calls run, or while its answers wait to
 * be written, the stream is not read; grpc-js then stops taking its data and HTTP/2 flow
 * control makes the sender's `write()` report backpressure, so nothing piles up here.
 */
export function streamHandle(runner: CallRunner, maxInFlight: number, open: OpenStreams): handleBidiStreamingCall<HandleStreamRequest, HandleStreamResponse> {
  return (stream: PluginStream) => {
    const calls = new Map<number, CallSignal>();
    let writesBlocked = false;
    let readEnded = false;
    let gone = false;

    const adjustIntake = (): void => {
      if (calls.size >= maxInFlight || writesBlocked) stream.pause();
      else stream.resume();
    };
    const endWhenDone = (): void => {
      if (readEnded && calls.size === 0 && !gone) stream.end();
    };
    const answer = (message: HandleStreamResponse): void => {
      if (gone) return;
      if (!stream.write(message) && !writesBlocked) {
        writesBlocked = true;
        stream.once('drain', () => {
          writesBlocked = false;
          adjustIntake();
        });
      }
    };

    stream.on('data', ({ callId, kind }: HandleStreamRequest) => {
      if (kind?.$case === 'cancel') return calls.get(callId)?.cancel();
      if (kind?.$case !== 'call') return answer(failure(callId, new PluginError(Code.InvalidArgument, 'stream request has neither a call nor a cancel')));
      if (calls.has(callId)) return answer(failure(callId, new PluginError(Code.InvalidArgument, `call id ${callId} is already in use on this stream`)));
      const { request, timeoutMs } = kind.value;
      const signal = new CallSignal(timeoutMs > 0 ? Date.now() + timeoutMs : Infinity);
      signal.armDeadline();
      calls.set(callId, signal);
      adjustIntake();
      runner
        .run(request, signal)
        .then(
          (response) => answer({ callId, outcome: { $case: 'response', value: response } }),
          (err: unknown) => answer(failure(callId, err)),
        )
        .finally(() => {
          calls.delete(callId);
          adjustIntake();
          endWhenDone();
        });
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
      open.delete(finish);
      for (const signal of calls.values()) signal.cancel();
    };
    stream.on('cancelled', abandon);
    stream.on('error', abandon);
    stream.on('finish', () => open.delete(finish));
  };
}
