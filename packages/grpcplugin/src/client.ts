import { Client, connectivityState, credentials as grpcCredentials, makeGenericClientConstructor, Metadata, type ServiceError } from '@grpc/grpc-js';
import { service as healthService, type ServingStatus } from 'grpc-health-check';
import type { CloudEvent } from './cloud-event.js';
import { Code, PluginError } from './errors.js';
import { eventToProto } from './event-codec.js';
import { HandleStatus, PluginServiceClient, type HandleRequest, type HandleResponse } from './gen/hollowtrees/plugin/v1/plugin.js';
import { PLUGIN_SERVICE_NAME } from './serve.js';
import { channelCredentials, type ClientTlsOptions } from './tls.js';

/** Options for {@link PluginClient}; every field has a default. */
export interface PluginClientOptions {
  /** TLS or mTLS towards the plugin. Default: plaintext. */
  tls?: ClientTlsOptions;
  /** Deadline for calls that do not set one. Default 30 000 ms. */
  defaultTimeoutMs?: number;
  /** Largest request sent, in bytes. Default 16 MiB. */
  maxSendMessageBytes?: number;
  /**
   * Backoff between attempts to reconnect to a plugin that went away. grpc-js
   * defaults to 1 s growing to 120 s, so a plugin that restarted stayed
   * unreachable for up to half a minute after it was back. Default 250 ms growing to 2 s.
   */
  reconnectBackoff?: { initialMs: number; maxMs: number };
}

/** Options for one {@link PluginClient.handle} call. */
export interface HandleCallOptions {
  /** The flow whose run makes the call. */
  flow: string;
  /** 1-based attempt number. Default 1. */
  attempt?: number;
  /** Deadline for this call, in ms from now. Default: the client's `defaultTimeoutMs`. */
  timeoutMs?: number;
  /** Cancels the call; it then fails with CANCELLED. */
  signal?: AbortSignal;
}

/** What a plugin answered. */
export interface PluginResponse {
  status: 'ok' | 'skipped';
  message: string;
  attributes: Record<string, string>;
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

function fromServiceError(err: ServiceError): PluginError {
  return new PluginError(err.code as number as Code, err.details || err.message);
}

function fromResponse({ status, message, attributes }: HandleResponse): PluginResponse {
  return { status: status === HandleStatus.HANDLE_STATUS_SKIPPED ? 'skipped' : 'ok', message, attributes };
}

/**
 * Core's side of the plugin contract: one channel to one plugin, opened on first
 * use and reused by every call until {@link PluginClient.close}.
 */
export class PluginClient {
  private readonly client: PluginServiceClient;
  private readonly health: HealthClient;
  private readonly defaultTimeoutMs: number;

  /** @param address `host:port` of the plugin. */
  constructor(readonly address: string, options: PluginClientOptions = {}) {
    const creds = channelCredentials(options.tls);
    const channelOptions = {
      'grpc.max_send_message_length': options.maxSendMessageBytes ?? 16 * 1024 * 1024,
      'grpc.initial_reconnect_backoff_ms': options.reconnectBackoff?.initialMs ?? 250,
      'grpc.max_reconnect_backoff_ms': options.reconnectBackoff?.maxMs ?? 2_000,
      ...(options.tls?.serverName ? { 'grpc.ssl_target_name_override': options.tls.serverName } : {}),
    };
    this.client = new PluginServiceClient(address, creds, channelOptions);
    // The health client shares the plugin client's channel: one connection per plugin.
    this.health = new HealthClientConstructor(address, grpcCredentials.createInsecure(), {
      channelOverride: this.client.getChannel(),
    });
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 30_000;
  }

  /**
   * Sends one event. Resolves with the plugin's answer; rejects with a
   * {@link PluginError} whose `code` is the gRPC status (DEADLINE_EXCEEDED when
   * the timeout passes). A plugin that cannot be reached is waited for until
   * the deadline and called once it is back, so a plugin restarting within the
   * deadline loses no call; UNAVAILABLE, with the connection error, when it never came.
   */
  async handle(event: CloudEvent, options: HandleCallOptions): Promise<PluginResponse> {
    const deadline = Date.now() + (options.timeoutMs ?? this.defaultTimeoutMs);
    const request = { event: eventToProto(event), flow: options.flow, attempt: options.attempt ?? 1 };
    try {
      return await this.callOnce(request, deadline, options.signal);
    } catch (err) {
      // Only when the channel is down: a plugin that answered UNAVAILABLE itself is not called again here.
      if (!(err instanceof PluginError) || err.code !== Code.Unavailable || this.channelReady()) throw err;
      if (!(await this.waitUntilReady(deadline, options.signal))) throw err;
      return this.callOnce(request, deadline, options.signal);
    }
  }

  private callOnce(request: HandleRequest, deadline: number, signal: AbortSignal | undefined): Promise<PluginResponse> {
    return new Promise<PluginResponse>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new PluginError(Code.Canceled, 'call cancelled before it started'));
        return;
      }
      // grpc-js passes a response whenever it passes no error.
      const call = this.client.handle(request, new Metadata(), { deadline }, (err: ServiceError | null, response?: HandleResponse) => {
        signal?.removeEventListener('abort', cancel);
        if (err) reject(fromServiceError(err));
        else resolve(fromResponse(response!));
      });
      const cancel = (): void => call.cancel();
      signal?.addEventListener('abort', cancel, { once: true });
    });
  }

  private channelReady(): boolean {
    return this.client.getChannel().getConnectivityState(false) === connectivityState.READY;
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
    const deadline = new Date(Date.now() + (options.timeoutMs ?? 5_000));
    return new Promise((resolve, reject) => {
      this.health.check({ service: options.service ?? PLUGIN_SERVICE_NAME }, new Metadata(), { deadline }, (err, response) =>
        err ? reject(fromServiceError(err)) : resolve(response!.status),
      );
    });
  }

  /** Closes the channel; calls in flight fail with CANCELLED or UNAVAILABLE. */
  close(): void {
    this.client.close();
  }
}
