import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { Metadata, status, type Client, type ClientDuplexStream, type StatusObject } from '@grpc/grpc-js';
import type { ChannelConnections } from './channel-connections.js';
import { answeredFailure, Code, PluginError } from './errors.js';
import { PluginServiceService, StreamCall, type HandleStreamResponse, type StreamResult } from './gen/hollowtrees/plugin/v1/plugin.js';
import { fromResponse, type PluginResponse } from './plugin-response.js';
import { announcedStreamLimits } from './stream-limit-headers.js';
import { closedBeforeSent, refusedUnprocessed, unsentFailure } from './unsent-call.js';

interface Pending {
  resolve(response: PluginResponse): void;
  reject(err: PluginError): void;
  /** Set once the call is written: only then does the plugin need a cancel. */
  written: boolean;
}

/** A call waiting to be written: its `HandleRequest`'s bytes and deadline, framed when written with the time left then. */
interface Waiting {
  request: Uint8Array;
  deadline: number;
}

/** The field number of `HandleStreamRequest.calls`, as a length-delimited field's tag. */
const CALLS_TAG = (1 << 3) | 2;
/** `StreamCall.call_id` (varint), `StreamCall.call`, `HandleCall.request` (length-delimited) and `HandleCall.timeout_ms` (varint), as tags. */
const STREAM_CALL_ID_TAG = (1 << 3) | 0;
const STREAM_CALL_CALL_TAG = (2 << 3) | 2;
const HANDLE_CALL_REQUEST_TAG = (1 << 3) | 2;
const HANDLE_CALL_TIMEOUT_TAG = (2 << 3) | 0;
/** At most what the tag and the length of one element of `calls` take. */
const FRAMING_BYTES = 6;
/** At most what a `StreamCall` adds around its request: the call id, the `call` field and the `timeout_ms`. */
const CALL_FRAMING_BYTES = 1 + 10 + 1 + 5 + 1 + 5 + 1 + 5;
/**
 * A message carries calls up to this many bytes, or up to the plugin's announced limit when
 * lower (a single larger call goes alone): gRPC servers take 4 MiB by default, and a message
 * over a plugin's limit ends the whole stream.
 */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;

/**
 * The writer every stream frames its messages with. A message is framed start to end without
 * yielding, so one writer serves all, and it keeps the size of the largest message sent (at most
 * MAX_BATCH_BYTES) instead of growing again from a few bytes for each.
 */
const messageWriter = new BinaryWriter();

/**
 * One `HandleStream` to a plugin, carrying many calls. A call written is matched to its
 * answer by id; the call's own timer ends it at its deadline and its signal cancels it.
 * A call made on an idle stream is written at the end of the current tick, with the calls
 * made in that tick; while a message is being written, the calls made within one turn of
 * the event loop go out as one message (gRPC writes a stream's messages one per turn: a
 * message per call would cap the stream at one call per turn of a busy core), kept below the largest message the plugin reads, which `serve()`
 * announces in the stream's headers. Writes respect the stream's backpressure: once
 * `write()` reports a full buffer, further calls wait here, one per waiting caller, until it
 * drains; so do calls beyond the number the plugin's headers say it runs at once, until its
 * answers free slots (a call that waited unread there would get its deadline counted from the
 * read), and, until the headers come, every call but the first: `serve()` sends them as the
 * stream opens, a plugin without the SDK may send them only with its first answer. A call that
 * ends meanwhile (deadline, cancel) is dropped at once, never sent. When the stream
 * ends or fails, every call without an answer fails with UNAVAILABLE (UNIMPLEMENTED when
 * the plugin does not serve the stream at all), marked {@link unsentFailure} when it cannot
 * have reached the plugin, and the stream is done: {@link onClosed}.
 */
export class ClientStream {
  private readonly call: ClientDuplexStream<Buffer, HandleStreamResponse>;
  private readonly pending = new Map<number, Pending>();
  /** Calls not written yet, by id, in the order they are to be written. */
  private readonly waiting = new Map<number, Waiting>();
  /** Cancels of written calls not written yet (encoded `StreamCall`s): they go first, as each frees a slot in the plugin. */
  private cancels: Uint8Array[] = [];
  /** Calls written whose answer has not come (also those ended here since: the plugin still holds them until it answers). */
  private readonly unanswered = new Set<number>();
  private flushScheduled = false;
  private nextId = 1;
  private blocked = false;
  private closed = false;
  /** Set by {@link end}: a half-closed stream takes no more writes (one would end it, and the answers still on their way). */
  private halfClosed = false;
  /** Set when the plugin refused a call as not started: it is shutting down and starts none here any more. */
  private draining = false;
  /** The largest message the plugin reads, once its headers said. */
  private receiveLimit: number | undefined;
  /**
   * No more calls are kept written and unanswered: the calls of the stream the plugin runs at once, once its headers
   * said (none said: no limit); one until they come, as the plugin's slots and what it reads are not known yet.
   */
  private callLimit = 1;
  /** What one message may carry: one call (0) until the plugin's headers came. */
  private batchBytes = 0;
  /** Taken as the stream opened: see {@link ChannelConnections}. */
  private readonly openedMark: number | undefined;
  /** Set when the plugin answered the stream with UNIMPLEMENTED: it serves only unary calls. */
  unimplemented = false;

  /** Opens the stream on `client`'s channel. `onClosed` runs once, when it ends or fails. */
  constructor(
    client: Client,
    private readonly maxSendBytes: number,
    private readonly connections: ChannelConnections,
    private readonly onClosed: (stream: ClientStream) => void,
  ) {
    const method = PluginServiceService.handleStream;
    this.openedMark = connections.mark();
    // Requests are encoded before they are written (to check their size), so the stream passes bytes on.
    this.call = client.makeBidiStreamRequest(method.path, (bytes: Buffer) => bytes, method.responseDeserialize, new Metadata());
    this.call.on('metadata', (headers: Metadata) => {
      const limits = announcedStreamLimits(headers);
      this.receiveLimit = limits.receiveBytes;
      this.callLimit = limits.calls ?? Infinity;
      this.batchBytes = Math.min(this.maxSendBytes, MAX_BATCH_BYTES, this.receiveLimit ?? Infinity);
      this.flush();
    });
    this.call.on('data', (message: HandleStreamResponse) => {
      message.results.forEach((result) => this.answered(result));
      // Answers free the plugin's slots: the calls held back for them go with the next message.
      if (this.waiting.size > 0) this.scheduleFlush();
    });
    this.call.on('drain', () => {
      this.blocked = false;
      this.flush();
    });
    // grpc-js reports a failure as 'error' and then as 'status'; 'status' comes for every end.
    this.call.on('error', () => {});
    this.call.on('status', (end: StatusObject) => this.close(end));
  }

  /** True while the stream takes calls: not once it ended, nor once the plugin refused a call as not started (it is shutting down). */
  get open(): boolean {
    return !this.closed && !this.draining;
  }

  /** Calls and cancels waiting to be written while the stream pushes back, or the plugin's slots are taken. */
  get queued(): number {
    return this.waiting.size + this.cancels.length;
  }

  /** Sends one call, its `HandleRequest` as `requestBytes()` encodes it; settles with its answer, its deadline, its cancel or the stream's end. */
  send(bytes: Uint8Array, deadline: number, signal: AbortSignal | undefined): Promise<PluginResponse> {
    const timeoutMs = Math.ceil(deadline - Date.now());
    if (timeoutMs <= 0) return Promise.reject(new PluginError(Code.DeadlineExceeded, 'deadline exceeded before the call was sent'));
    const refused = this.refusal(bytes.length);
    if (refused) return Promise.reject(refused);
    const callId = this.nextId++;
    const answer = this.awaitAnswer(callId, timeoutMs, signal);
    // Framed with the time it has left when it is written.
    this.waiting.set(callId, { request: bytes, deadline });
    this.scheduleFlush();
    return answer;
  }

  /**
   * The answer of call `callId`, ended here at its deadline or by `signal`. Made apart from
   * {@link send}: the closures a call keeps until its answer would otherwise hold `send`'s scope,
   * and with it the request's bytes, long after they were written.
   */
  private awaitAnswer(callId: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<PluginResponse> {
    return new Promise<PluginResponse>((resolve, reject) => {
      // Ends the call here, and in the plugin too once it has the call: core retries a call
      // that passed its deadline, which must not find the first try still at work (a unary
      // call's deadline cancels it in the plugin the same way).
      const end = (err: PluginError): void => {
        const written = this.pending.get(callId)?.written === true;
        done();
        reject(err);
        if (written && !this.closed && !this.halfClosed) {
          this.cancels.push(StreamCall.encode({ callId, kind: { $case: 'cancel', value: {} } }).finish());
          this.scheduleFlush();
        }
      };
      const done = (): void => {
        this.pending.delete(callId);
        // Its request, when still waiting for a write, is not kept until the stream drains.
        this.waiting.delete(callId);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const timer = setTimeout(() => end(new PluginError(Code.DeadlineExceeded, 'deadline exceeded')), timeoutMs);
      const onAbort = (): void => end(new PluginError(Code.Canceled, 'call cancelled'));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(callId, {
        resolve: (response) => (done(), resolve(response)),
        reject: (err) => (done(), reject(err)),
        written: false,
      });
    });
  }

  /**
   * Half-closes the stream: the plugin answers the calls it has and then ends it. Calls not
   * written yet fail at once with {@link closedBeforeSent}: nothing is written after the end,
   * not even the cancel of a call ended here later (the plugin's handler keeps its deadline).
   */
  end(): void {
    if (this.closed || this.halfClosed) return;
    this.halfClosed = true;
    for (const callId of this.waiting.keys()) this.pending.get(callId)?.reject(closedBeforeSent());
    this.waiting.clear();
    this.cancels = [];
    this.call.end();
  }

  /** RESOURCE_EXHAUSTED for a request of `requestBytes` too large to send, as grpc-js' own limit on a unary call. */
  private refusal(requestBytes: number): PluginError | undefined {
    const bytes = requestBytes + CALL_FRAMING_BYTES + FRAMING_BYTES;
    if (bytes > this.maxSendBytes) return new PluginError(Code.ResourceExhausted, `request of ${requestBytes} bytes is larger than maxSendMessageBytes (${this.maxSendBytes})`);
    if (bytes > (this.receiveLimit ?? Infinity)) return new PluginError(Code.ResourceExhausted, `request of ${requestBytes} bytes is larger than the plugin reads (its maxReceiveMessageBytes, ${this.receiveLimit})`);
    return undefined;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    const flush = (): void => {
      this.flushScheduled = false;
      this.flush();
    };
    // On an idle stream the calls leave at the end of this tick, ahead of what the caller does next in
    // this turn (core's HTTP acknowledgement). While a message is being written gRPC holds the next one
    // until that write completes: then the calls of the whole turn are gathered into one message.
    if (this.call.writableLength === 0) process.nextTick(flush);
    else setImmediate(flush);
  }

  /**
   * Writes what waits, in as few messages as {@link batchBytes} allows, until the stream pushes back: the cancels, then
   * the calls, while fewer than the plugin runs at once are written and unanswered ({@link callLimit}); the others wait
   * here for answers, where their deadlines end them before they ever leave.
   */
  private flush(): void {
    while (!this.blocked && !this.closed && (this.waiting.size > 0 || this.cancels.length > 0)) {
      const writer = messageWriter;
      let size = 0;
      let cancels = 0;
      for (const cancel of this.cancels) {
        if (size > 0 && size + cancel.length + FRAMING_BYTES > this.batchBytes) break;
        size += cancel.length + FRAMING_BYTES;
        writer.uint32(CALLS_TAG).bytes(cancel);
        cancels++;
      }
      this.cancels.splice(0, cancels);
      for (const [callId, entry] of this.waiting) {
        if (this.unanswered.size >= this.callLimit) break;
        const length = entry.request.length + CALL_FRAMING_BYTES;
        if (size > 0 && size + length + FRAMING_BYTES > this.batchBytes) break;
        this.waiting.delete(callId);
        const pending = this.pending.get(callId)!;
        // Queued before the plugin's headers told its limit: refused now, it never leaves.
        const refused = this.refusal(entry.request.length);
        if (refused) {
          pending.reject(refused);
          continue;
        }
        // Its deadline passed in a turn too busy to run its timer yet: it never leaves, as the timer would have had it.
        const timeoutMs = Math.ceil(entry.deadline - Date.now());
        if (timeoutMs <= 0) {
          pending.reject(new PluginError(Code.DeadlineExceeded, 'deadline exceeded before the call was sent'));
          continue;
        }
        size += length + FRAMING_BYTES;
        pending.written = true;
        this.unanswered.add(callId);
        // One element of `calls`: a StreamCall {call_id, call: HandleCall {request, timeout_ms}} around the
        // request's bytes, with the time left now (it may have waited while the stream pushed back).
        writer.uint32(CALLS_TAG).fork();
        writer.uint32(STREAM_CALL_ID_TAG).uint64(callId);
        writer.uint32(STREAM_CALL_CALL_TAG).fork().uint32(HANDLE_CALL_REQUEST_TAG).bytes(entry.request).uint32(HANDLE_CALL_TIMEOUT_TAG).uint32(timeoutMs).join();
        writer.join();
      }
      const message = writer.finish();
      // Nothing to write: what waits are calls the plugin has no slot for yet.
      if (size === 0) return;
      // A view, not a copy: finish() already returned bytes of their own.
      this.blocked = !this.call.write(Buffer.from(message.buffer, message.byteOffset, message.byteLength));
    }
  }

  private answered({ callId, outcome }: StreamResult): void {
    this.unanswered.delete(callId);
    const pending = this.pending.get(callId);
    if (!pending) return; // ended here already: deadline or cancel
    if (outcome?.$case === 'response') pending.resolve(fromResponse(outcome.value));
    else if (outcome?.$case === 'status' && outcome.value.notStarted) this.refusedUnstarted(pending, new PluginError(Code.Unavailable, outcome.value.message));
    else if (outcome?.$case === 'status') pending.reject(answeredFailure(outcome.value.code, outcome.value.message));
    else pending.reject(new PluginError(Code.Internal, 'the plugin answered a call with neither a response nor a status'));
    this.endWhenDrained();
  }

  /** Half-closes a stream that takes no more calls once the plugin answered every call written on it. */
  private endWhenDrained(): void {
    if (this.draining && this.pending.size === 0) this.end();
  }

  /**
   * The stream's connection is going away (the plugin sent GOAWAY as it shuts down, or the connection broke): no call
   * is written on it any more, and those waiting here (for a slot in the plugin) fail as never sent, so
   * {@link PluginClient} sends them again on a new stream, over a new connection, as the same attempt; the calls
   * written get their answers here, and the stream is half-closed once it has them.
   */
  connectionLeaving(): void {
    if (this.closed || this.draining) return;
    this.stopTaking(unsentFailure(new PluginError(Code.Unavailable, 'the connection to the plugin went away before the call was sent')));
    this.endWhenDrained();
  }

  /**
   * The plugin did not start a call as it shuts down: the call, and those not written yet, fail as
   * never sent, so {@link PluginClient} sends them again on a new stream (over a new connection:
   * the plugin sent GOAWAY) as the same attempt; this stream only waits for the answers of the
   * calls the plugin started, and is half-closed once it has them.
   */
  private refusedUnstarted(pending: Pending, err: PluginError): void {
    unsentFailure(err);
    pending.reject(err);
    this.stopTaking(err);
  }

  /** Takes no more calls: those not written yet fail with `err`. */
  private stopTaking(err: PluginError): void {
    this.draining = true;
    for (const callId of this.waiting.keys()) this.pending.get(callId)?.reject(err);
  }

  private close(end: StatusObject): void {
    if (this.closed) return;
    this.closed = true;
    this.waiting.clear();
    this.cancels = [];
    this.unimplemented = end.code === status.UNIMPLEMENTED;
    const error = (): PluginError =>
      this.unimplemented
        ? new PluginError(Code.Unimplemented, `the plugin does not serve HandleStream: ${end.details}`)
        : end.code === status.UNAVAILABLE
          ? new PluginError(Code.Unavailable, end.details) // as a unary call would say it: the connection's error
          : end.code === status.OK
            ? new PluginError(Code.Unavailable, 'the plugin ended the stream before it read the call (it is shutting down)')
            : new PluginError(Code.Unavailable, `the stream to the plugin ended with ${status[end.code]} before the call was answered${end.details ? `: ${end.details}` : ''}`);
    const mayHaveArrived = error();
    const neverSent = this.unimplemented ? mayHaveArrived : unsentFailure(error());
    // Nothing of this stream left the client when no connection was made while it was open.
    const neverConnected = this.connections.neverConnectedSince(this.openedMark);
    // A plugin ends a stream with OK only once it answered every call it read (serve() as it closes, idle): a call still
    // without an answer came after that, and was not started, as one refused with not_started.
    const notRead = end.code === status.OK;
    // Nor did a plugin that refused the stream unprocessed (REFUSED_STREAM, as it goes away) read any call on it.
    const refused = refusedUnprocessed(end);
    for (const pending of [...this.pending.values()]) pending.reject(neverConnected || notRead || refused || !pending.written ? neverSent : mayHaveArrived);
    this.onClosed(this);
  }
}
