import type { handleBidiStreamingCall, ServerDuplexStream } from '@grpc/grpc-js';
import { answerMessages } from './answer-size.js';
import { CallSignal } from './call-signal.js';
import { Code, PluginError } from './errors.js';
import { shuttingDown, type CallRunner } from './call-runner.js';
import type { HandleCall } from './gen/hollowtrees/plugin/v1/plugin.js';
import { Backlog } from './backlog.js';
import { streamLimitHeaders } from './stream-limit-headers.js';
import { failedResult, type CallId, type ServedCall, type ServedResult, type ServedStreamRequest, type ServedStreamResponse } from './served-stream-codec.js';

type PluginStream = ServerDuplexStream<ServedStreamRequest, ServedStreamResponse>;

/** What `close()` does to each open stream. */
export interface OpenStream {
  /** As close() begins: refuses the calls waiting for a slot, which cannot start any more, as not started, and reads the stream again to refuse those behind them. */
  refuseWaiting(): void;
  /** Once the calls in flight ended: ends the stream when its answers are written. */
  finish(): void;
}

/** The streams open now. */
export type OpenStreams = Set<OpenStream>;

/** A call refused while the server closes: marked not started, so the client sends it elsewhere at once. */
const notStarted = (callId: CallId): ServedResult => failedResult(callId, shuttingDown(), true);

/** How {@link streamHandle} reads a stream. */
export interface StreamLimits {
  /** Calls of one stream that run at once. */
  maxInFlight: number;
  /** The server's `grpc.max_receive_message_length`, announced to the client as the stream opens. */
  maxReceiveBytes: number;
}

/**
 * Serves `HandleStream`: many calls on one stream, each with its id, deadline and cancel.
 * Answers ready within one turn of the event loop go out together, in as few messages of at
 * most 4 MiB as they fit: gRPC writes a stream's messages one at a time, one per turn, so a
 * message per answer would cap a busy plugin at one answer per turn. Flow control: while
 * `maxInFlight` of the stream's calls run (calls of a message beyond that wait their turn
 * here), or while answers wait to be written, the stream is not read; grpc-js then stops
 * taking its data and HTTP/2 flow control makes the sender's `write()` report backpressure.
 */
export function streamHandle(runner: CallRunner, { maxInFlight, maxReceiveBytes }: StreamLimits, open: OpenStreams): handleBidiStreamingCall<ServedStreamRequest, ServedStreamResponse> {
  return (stream: PluginStream) => {
    // At once, not with the first answer: the client batches its calls below the message limit from then on, and keeps
    // no more of them unanswered than run here at once, so that every call read has a slot and starts as it is read.
    stream.sendMetadata(streamLimitHeaders({ receiveBytes: maxReceiveBytes, calls: maxInFlight }));
    const calls = new Map<CallId, CallSignal>();
    // Calls read but not started yet, with their deadlines counted from when they were read; by id, so
    // a message of thousands of calls (or their cancels) is not looked up call by call along the list.
    const backlog = new Backlog<{ request: HandleCall['request']; deadlineMs: number }, CallId>();
    let results: ServedResult[] = [];
    let flushScheduled = false;
    let fullPause = false;
    let catchingUp = false;
    let writesBlocked = false;
    let readEnded = false;
    let gone = false;

    const adjustIntake = (): void => {
      // Once the server closes every call is refused as it is read: nothing holds a slot any more.
      const room = runner.closing || calls.size + backlog.size < maxInFlight;
      // While catching up, what the stream holds is read though calls wait, as it may cancel them; only
      // while the backlog holds at most `maxInFlight` calls, so no more than that and a message wait here.
      const readAhead = catchingUp && backlog.size <= maxInFlight;
      if (!writesBlocked && (room || readAhead)) {
        if (fullPause) catchUp();
        fullPause = false;
        stream.resume();
      } else {
        fullPause ||= !room;
        stream.pause();
      }
    };
    // Once a stream that was not read for want of a free slot is read again, the calls it held start a
    // turn later, not as each is read: what came behind them (a cancel of one of them) is read first.
    // Calls read while there is room start at once.
    const catchUp = (): void => {
      if (catchingUp) return;
      catchingUp = true;
      setImmediate(() => {
        catchingUp = false;
        startWaiting();
        adjustIntake();
        endWhenDone();
      });
    };
    const endWhenDone = (): void => {
      if (readEnded && calls.size === 0 && backlog.size === 0 && results.length === 0 && !gone) stream.end();
    };
    const flush = (): void => {
      flushScheduled = false;
      if (gone || results.length === 0) return;
      const ready = results;
      results = [];
      // Every message is written: the answers are in memory already, and the 'drain' stops the reading.
      for (const message of answerMessages(ready)) {
        if (!stream.write({ results: message }) && !writesBlocked) {
          writesBlocked = true;
          stream.once('drain', () => {
            writesBlocked = false;
            adjustIntake();
          });
        }
      }
      endWhenDone();
    };
    const answer = (result: ServedResult): void => {
      results.push(result);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    };
    const start = (callId: CallId, request: HandleCall['request'], deadlineMs: number): void => {
      if (deadlineMs <= Date.now()) return answer(failedResult(callId, new PluginError(Code.DeadlineExceeded, 'deadline exceeded before the call started')));
      const signal = new CallSignal(deadlineMs);
      signal.armDeadline();
      calls.set(callId, signal);
      let ended = false;
      const end = (result: ServedResult): void => {
        if (ended) return;
        ended = true;
        calls.delete(callId);
        answer(result);
        if (backlog.size > 0) catchUp();
        adjustIntake();
        endWhenDone();
      };
      // Answered, and its slot freed, once its deadline passes or it is cancelled, whether or not the
      // handler has returned (as grpc-js ends a unary call at its deadline): a handler that ignores its
      // signal must not hold the stream's slots, and with them every later call, for ever.
      signal.whenCancelled((reason) => end(failedResult(callId, reason)));
      runner.run(request, signal).then(
        (response) => end({ callId, outcome: { $case: 'response', value: response } }),
        (err: unknown) => end(failedResult(callId, err)),
      );
    };
    const startWaiting = (): void => {
      while (calls.size < maxInFlight) {
        const next = backlog.shift();
        if (!next) return;
        start(next.id, next.entry.request, next.entry.deadlineMs);
      }
    };
    const take = ({ callId, kind }: ServedCall): void => {
      if (kind?.$case === 'cancel') {
        if (backlog.delete(callId)) answer(failedResult(callId, new PluginError(Code.Canceled, 'call cancelled by the client')));
        return calls.get(callId)?.cancel();
      }
      if (kind?.$case !== 'call') return answer(failedResult(callId, new PluginError(Code.InvalidArgument, 'stream call has neither a call nor a cancel')));
      if (calls.has(callId) || backlog.has(callId)) {
        return answer(failedResult(callId, new PluginError(Code.InvalidArgument, `call id ${callId} is already in use on this stream`)));
      }
      if (runner.closing) return answer(notStarted(callId));
      const { request, timeoutMs } = kind.value;
      backlog.push(callId, { request, deadlineMs: timeoutMs > 0 ? Date.now() + timeoutMs : Infinity });
    };

    stream.on('data', (message: ServedStreamRequest) => {
      for (const call of message.calls) take(call);
      if (!catchingUp) startWaiting();
      adjustIntake();
    });
    // The client's half-close, or the server's close(): no call is read any more.
    const finish = (): void => {
      readEnded = true;
      endWhenDone();
    };
    const refuseWaiting = (): void => {
      for (let next = backlog.shift(); next; next = backlog.shift()) answer(notStarted(next.id));
      adjustIntake();
    };
    const opened: OpenStream = { refuseWaiting, finish };
    open.add(opened);
    stream.on('end', finish);
    // The client went away: its calls' handlers are told, and nothing more is written.
    const abandon = (): void => {
      gone = true;
      backlog.clear();
      open.delete(opened);
      for (const signal of calls.values()) signal.cancel();
    };
    stream.on('cancelled', abandon);
    stream.on('error', abandon);
    stream.on('finish', () => open.delete(opened));
  };
}
