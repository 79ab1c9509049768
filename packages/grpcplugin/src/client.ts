import { Client, connectivityState, credentials as grpcCredentials, makeGenericClientConstructor, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { service as healthService, type ServingStatus } from 'grpc-health-check';
import { ChannelConnections } from './channel-connections.js';
import type { CloudEvent } from './cloud-event.js';
import { ClientStream } from './client-stream.js';
import { answeredFailure, Code, PluginError } from './errors.js';
import { eventToProto } from './event-codec.js';
import { PluginServiceClient, PluginServiceService, type HandleResponse } from './gen/hollowtrees/plugin/v1/plugin.js';
import { jsonLogger, type PluginLogger } from './plugin-logger.js';
import { keepaliveChannelOptions, type KeepaliveOptions } from './keepalive.js';
import { markedNotStarted } from './not-started-trailer.js';
import { fromResponse, type PluginResponse } from './plugin-response.js';
import { PLUGIN_SERVICE_NAME } from './service-name.js';
import { requestBytes } from './request-bytes.js';
import { checkedMessageBytes } from './message-limit.js';
import { checkedDeadlineMs, checkedTimerMs } from './timer-limit.js';
import { channelCredentials, type ClientTlsFiles, type ClientTlsOptions } from './tls.js';
import { closedBeforeSent, isUnsentFailure, refusedUnprocessed, unsentFailure } from './unsent-call.js';

export type { PluginResponse } from './plugin-response.js';

/**
 * How a {@link PluginClient} carries calls. `auto`: one `HandleStream` per plugin, and the
 * unary `Handle` for a plugin that answers the stream with UNIMPLEMENTED. `stream`: the
 * stream only. `unary`: one unary call per call.
 */
export type PluginTransport = 'auto' | 'stream' | 'unary';

/** Options for {@link PluginClient}; every field has a default. */
export interface PluginClientOptions {
  /**
   * TLS or mTLS towards the plugin. Default: plaintext. PEM contents are used until the process ends;
   * `{ files: new TlsFiles({ ca, cert, key }) }` reads the files again as they are renewed.
   */
  tls?: ClientTlsOptions | ClientTlsFiles;
  /** Deadline for calls that do not set one. Default 30 000 ms; more than 0 and at most 2^31-1 ms (24.8 days), as every timeout here. */
  defaultTimeoutMs?: number;
  /** Largest request sent, in bytes: a whole number of at least 1 (a RangeError otherwise). Default 16 MiB. */
  maxSendMessageBytes?: number;
  /**
   * Backoff between attempts to reconnect to a plugin that went away. grpc-js
   * defaults to 1 s growing to 120 s, so a plugin that restarted stayed
   * unreachable for up to half a minute after it was back. Default 250 ms growing to 2 s. Each a whole
   * number of ms from 1 to 2^31-1, `initialMs` at most `maxMs` (a RangeError otherwise: 0 would
   * retry a plugin that is down in a tight loop).
   */
  reconnectBackoff?: { initialMs: number; maxMs: number };
  /** How calls travel. Default `auto`: the stream, unary for a plugin without it. */
  transport?: PluginTransport;
  /**
   * Pings on the connection while a call or the stream is open, so one dropped silently on the
   * way (a NAT, a load balancer) fails its calls with UNAVAILABLE, which core retries on a new
   * connection, instead of each waiting out its deadline for some 15 minutes. `false`: no pings.
   * Default {@link DEFAULT_KEEPALIVE}, 30 s and 10 s. `serve()` takes pings at any rate; a plugin
   * served otherwise may answer pings more frequent than its policy allows (gRPC-Go and C++
   * allow one per 5 minutes unless configured) with GOAWAY `too_many_pings`: grpc-js then closes
   * the connection and doubles its interval, so set the server's minimum ping interval to at
   * most `timeMs`, or raise `timeMs` here.
   */
  keepalive?: KeepaliveOptions | false;
  /** Where the client says it fell back to unary calls. Default: {@link jsonLogger} with service `hollowtrees`. */
  logger?: PluginLogger;
}

/** Options for one {@link PluginClient.handle} call. */
export interface HandleCallOptions {
  /** The flow whose run makes the call. */
  flow: string;
  /** 1-based attempt number. Default 1. */
  attempt?: number;
  /** The flow's settings for this plugin (the handler's `context.config`). Default none. */
  config?: Readonly<Record<string, string>>;
  /** Deadline for this call, in ms from now, more than 0 and at most 2^31-1 (24.8 days): a RangeError otherwise. Default: the client's `defaultTimeoutMs`. */
  timeoutMs?: number;
  /** Cancels the call; it then fails with CANCELLED. */
  signal?: AbortSignal;
}


interface HealthClient extends Client {
  check(
    request: { service: string },
    metadata: Metadata,
    options: { deadline: Date },
    callback: (err: ServiceError | null, response?: { status: ServingStatus }) => void,
  ): void;
}
const HealthClientConstructor = makeGenericClientConstructor(healthService, 'Health') as unknown as new (
  ...args: ConstructorParameters<typeof Client>
) => HealthClient;

/** The unary `Handle` method, called with the request's bytes (see requestBytes()). */
const HANDLE = PluginServiceService.handle;
/** Bytes as grpc-js sends them: a Buffer over the same memory. */
const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** The largest answer taken from a plugin: see the channel options. */
const MAX_RECEIVE_BYTES = 16 * 1024 * 1024;

function fromServiceError(err: ServiceError): PluginError {
  return answeredFailure(err.code, err.details || err.message);
}

/**
 * A unary call's failure when this client did not cancel it. grpc-js reports a call the server reset
 * (RST_STREAM CANCEL: a plugin cutting its calls at the end of its shutdown, or a proxy between) as
 * CANCELLED "Call cancelled", which core does not retry: UNAVAILABLE instead, as a stream that ends
 * with the call unanswered, so it goes again (to the new instance of a rolling update).
 */
function unaryFailure(err: ServiceError): PluginError {
  if (err.code !== status.CANCELLED || err.details !== 'Call cancelled') return fromServiceError(err);
  return new PluginError(Code.Unavailable, 'the call was reset before it was answered (CANCELLED "Call cancelled": the plugin stopped, or something between cut the call)');
}

/**
 * Core's side of the plugin contract: one channel to one plugin, opened on first
 * use and reused by every call until {@link PluginClient.close}. Calls travel on
 * one `HandleStream`, opened with the first call and opened again after it broke
 * (the calls it carried without an answer fail with UNAVAILABLE, which core
 * retries); see {@link PluginClientOptions.transport}.
 */
export class PluginClient {
  private readonly client: PluginServiceClient;
  private readonly health: HealthClient;
  private readonly defaultTimeoutMs: number;
  private readonly maxSendBytes: number;
  private readonly logger: PluginLogger | undefined;
  private readonly connections: ChannelConnections;
  private transport: PluginTransport;
  private stream: ClientStream | undefined;
  private closed = false;

  /** @param address `host:port` of the plugin. */
  constructor(readonly address: string, options: PluginClientOptions = {}) {
    const creds = channelCredentials(options.tls);
    this.maxSendBytes = checkedMessageBytes('PluginClient: maxSendMessageBytes', options.maxSendMessageBytes ?? 16 * 1024 * 1024);
    this.transport = options.transport ?? 'auto';
    this.logger = options.logger;
    const channelOptions = {
      'grpc.max_send_message_length': this.maxSendBytes,
      // serve() writes at most 4 MiB a message (grpc-js' default here); the room above is for plugins
      // written without the SDK, whose larger answer would otherwise fail a call the plugin completed.
      'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
      ...streamWriteOptions(this.transport),
      ...reconnectBackoffOptions(options.reconnectBackoff),
      ...keepaliveChannelOptions('PluginClient: keepalive', options.keepalive),
      ...(options.tls?.serverName ? { 'grpc.ssl_target_name_override': options.tls.serverName } : {}),
    };
    this.client = new PluginServiceClient(address, creds, channelOptions);
    // A stream whose connection goes away sends its waiting calls to the next one at once, not at its end.
    this.connections = new ChannelConnections(this.client.getChannel(), () => this.stream?.connectionLeaving());
    // The health client shares the plugin client's channel: one connection per plugin.
    this.health = new HealthClientConstructor(address, grpcCredentials.createInsecure(), {
      channelOverride: this.client.getChannel(),
    });
    this.defaultTimeoutMs = checkedDeadlineMs('PluginClient: defaultTimeoutMs', options.defaultTimeoutMs ?? 30_000);
  }

  /**
   * Sends one event. Resolves with the plugin's answer; rejects with a
   * {@link PluginError} whose `code` is the gRPC status (DEADLINE_EXCEEDED when
   * the timeout passes). A call that could not leave, because no connection to the
   * plugin was made since it was made, or that a closing plugin refused marked not started, is sent again,
   * as the same attempt, once the plugin (or another behind its address) is reachable within
   * the deadline, so a plugin starting or restarting loses no call; UNAVAILABLE, with
   * the connection error, when it never came, and CANCELLED when the call was cancelled or
   * the client closed while it waited. A call that may have reached the plugin
   * is never sent again here: it fails (UNAVAILABLE when the connection broke or the plugin reset the call) and
   * the caller's retry policy, with its attempt numbers, decides. A call sent again reads `event`
   * again: leave it unchanged until the call settles (`options` is read once, as the call starts).
   */
  async handle(event: CloudEvent, options: HandleCallOptions): Promise<PluginResponse> {
    const deadline = Date.now() + checkedDeadlineMs('PluginClient.handle: timeoutMs', options.timeoutMs ?? this.defaultTimeoutMs);
    // Read now, as the event's data is not: a call sent again goes as the attempt it was made as, whatever the caller does with `options` meanwhile.
    const { flow, attempt = 1 } = options;
    const config = { ...options.config };
    // Encoded for each send, not kept: a call waiting for its answer holds neither the message's object tree
    // (with its copy of the event's data as JSON) nor its bytes once written, only the event its caller holds
    // anyway. With thousands of calls in flight (a reclaim wave) every young-generation collection copies what
    // the calls hold; a send again (below) is rare.
    const request = (): Uint8Array => requestBytes({ event: eventToProto(event), flow, attempt, config });
    try {
      return await this.callOnce(request, deadline, options.signal);
    } catch (err) {
      if (!isUnsentFailure(err)) throw err;
      if (await this.waitUntilReady(deadline, options.signal)) return this.callOnce(request, deadline, options.signal);
      // Given up on while it waited, it fails as a call given up before it was sent does, not UNAVAILABLE (which core retries).
      if (options.signal?.aborted) throw new PluginError(Code.Canceled, 'call cancelled while it waited for the plugin, before it was sent');
      if (this.closed) throw closedBeforeSent();
      throw err;
    }
  }

  private async callOnce(request: () => Uint8Array, deadline: number, signal: AbortSignal | undefined): Promise<PluginResponse> {
    if (signal?.aborted) throw new PluginError(Code.Canceled, 'call cancelled before it started');
    // grpc-js would throw a plain Error for a unary call, and open a stream that ends at once.
    if (this.closed) throw closedBeforeSent();
    if (this.transport === 'unary') return this.callUnary(request, deadline, signal);
    let stream: ClientStream;
    try {
      stream = this.openStream();
    } catch (err) {
      throw new PluginError(Code.Unavailable, `cannot open a stream to the plugin: ${(err as Error).message}`, { cause: err });
    }
    try {
      return await stream.send(request(), deadline, signal);
    } catch (err) {
      // The plugin has no stream: it never saw the call, which goes out again as a unary call.
      if (!stream.unimplemented || this.transport === 'stream' || !(err instanceof PluginError) || err.code !== Code.Unimplemented) throw err;
      if (this.transport === 'auto') {
        // Every call in flight on that stream comes here; the first one says so.
        this.transport = 'unary';
        (this.logger ?? jsonLogger({ service: 'hollowtrees' })).warn(`plugin at ${this.address} does not serve HandleStream: calling it with unary Handle calls from now on`, { address: this.address });
      }
      // Closed since the call was written: the channel takes no call (grpc-js would throw a plain Error).
      if (this.closed) throw closedBeforeSent();
      return this.callUnary(request, deadline, signal);
    }
  }

  /** The open stream, or a new one when there is none. */
  private openStream(): ClientStream {
    if (this.stream?.open) return this.stream;
    const stream = new ClientStream(this.client, this.maxSendBytes, this.connections, (closed) => {
      if (this.stream === closed) this.stream = undefined;
    });
    this.stream = stream;
    return stream;
  }

  private callUnary(request: () => Uint8Array, deadline: number, signal: AbortSignal | undefined): Promise<PluginResponse> {
    return new Promise<PluginResponse>((resolve, reject) => {
      const mark = this.connections.mark();
      // grpc-js passes a response whenever it passes no error.
      const call = this.client.makeUnaryRequest(HANDLE.path, asBuffer, HANDLE.responseDeserialize, request(), new Metadata(), { deadline }, (err: ServiceError | null, response?: HandleResponse) => {
        signal?.removeEventListener('abort', cancel);
        if (!err) return resolve(fromResponse(response!));
        const failure = signal?.aborted || this.closed ? fromServiceError(err) : unaryFailure(err);
        // grpc-js fails a call at once, unsent, while the channel cannot connect; a closing plugin marks one it did not start,
        // or its HTTP/2 layer refuses it unprocessed.
        const unsent = this.connections.neverConnectedSince(mark) || markedNotStarted(err.metadata) || refusedUnprocessed(err);
        reject(failure.code === Code.Unavailable && unsent ? unsentFailure(failure) : failure);
      });
      const cancel = (): void => call.cancel();
      signal?.addEventListener('abort', cancel, { once: true });
    });
  }

  /**
   * Resolves true once the channel is connected, false when the deadline passes,
   * the call is cancelled or the client is closed first. Watches the channel
   * without a deadline of grpc-js' own: its timer would outlive `close()` and
   * keep the process alive until the deadline.
   */
  private waitUntilReady(deadline: number, signal: AbortSignal | undefined): Promise<boolean> {
    const channel = this.client.getChannel();
    return new Promise((resolve) => {
      let done = false;
      const finish = (ready: boolean): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(ready);
      };
      const onAbort = (): void => finish(false);
      const timer = setTimeout(() => finish(false), Math.max(0, deadline - Date.now()));
      signal?.addEventListener('abort', onAbort, { once: true });
      const check = (): void => {
        if (done) return;
        let state: connectivityState;
        try {
          state = channel.getConnectivityState(true);
          if (state === connectivityState.READY || state === connectivityState.SHUTDOWN) return finish(state === connectivityState.READY);
          channel.watchConnectivityState(state, Infinity, check);
        } catch {
          finish(false); // closed meanwhile
        }
      };
      check();
    });
  }


  /**
   * Asks the plugin's `grpc.health.v1` service for its status.
   * @param service Default: the plugin service's own name.
   */
  checkHealth(options: { service?: string; timeoutMs?: number } = {}): Promise<ServingStatus> {
    return new Promise((resolve, reject) => {
      // grpc-js would throw a plain Error on the closed channel.
      if (this.closed) return reject(closedBeforeSent());
      // In here, so a timeout refused rejects as any failure does.
      const deadline = new Date(Date.now() + checkedDeadlineMs('PluginClient.checkHealth: timeoutMs', options.timeoutMs ?? 5_000));
      this.health.check({ service: options.service ?? PLUGIN_SERVICE_NAME }, new Metadata(), { deadline }, (err, response) =>
        err ? reject(fromServiceError(err)) : resolve(response!.status),
      );
    });
  }

  /**
   * Closes the channel; calls in flight fail with CANCELLED or UNAVAILABLE. Calls not sent yet,
   * and calls (or health checks) made from now on, fail with CANCELLED: the client was closed before the call was sent.
   * A stream call cancelled after it (its signal, its deadline) is not told to the plugin: the
   * half-closed stream takes no more writes, and the plugin's handler keeps the call's deadline.
   */
  close(): void {
    this.closed = true;
    this.stream?.end();
    this.client.close();
  }
}

/**
 * Channel options for a client that may use the stream. grpc-js takes up to 1 MiB of a call's messages at once into
 * its retry buffer, reporting each as written, and sends them one per completed socket write: the stream's
 * backpressure never showed, and a busy core, whose calls leave in a message each turn of its own, queued them there
 * behind thousands of messages, for longer than their deadline. With no buffer, a write completes when it was sent.
 * It costs grpc-js' transparent retry of a call refused unprocessed (REFUSED_STREAM as a plugin goes away), on the stream
 * and on the unary calls of an `auto` client that fell back: the client sends such a call again itself ({@link refusedUnprocessed}).
 */
function streamWriteOptions(transport: PluginTransport): Record<string, number> {
  return transport === 'unary' ? {} : { 'grpc.per_rpc_retry_buffer_size': 0 };
}

/** grpc-js' reconnect backoff options, checked (see {@link PluginClientOptions.reconnectBackoff}). */
function reconnectBackoffOptions(backoff: { initialMs: number; maxMs: number } = { initialMs: 250, maxMs: 2_000 }): Record<string, number> {
  const initialMs = checkedTimerMs('PluginClient: reconnectBackoff.initialMs', backoff.initialMs);
  const maxMs = checkedTimerMs('PluginClient: reconnectBackoff.maxMs', backoff.maxMs);
  if (initialMs > maxMs) throw new RangeError(`PluginClient: reconnectBackoff.initialMs (${initialMs}) must be at most maxMs (${maxMs})`);
  return { 'grpc.initial_reconnect_backoff_ms': initialMs, 'grpc.max_reconnect_backoff_ms': maxMs };
}
