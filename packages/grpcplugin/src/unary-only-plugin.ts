import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { eventFromProto } from './event-codec.js';
import { HandleStatus, PluginServiceService, type HandleRequest, type HandleResponse } from './gen/hollowtrees/plugin/v1/plugin.js';
import type { CloudEvent } from './cloud-event.js';

/** A running {@link serveUnaryOnly} plugin. */
export interface UnaryOnlyPlugin {
  readonly port: number;
  /** The calls it answered so far. */
  readonly calls: number;
  close(): Promise<void>;
}

/**
 * Serves a plugin the way one written without this SDK would: plain grpc-js and the generated
 * service definition, implementing the unary `Handle` only (grpc-js answers `HandleStream`
 * UNIMPLEMENTED). Every call answers OK with `answer(event, flow)` as its message. For tests of
 * a client's fallback to unary calls, on 127.0.0.1 and an ephemeral port unless `port` is given.
 */
export async function serveUnaryOnly(answer: (event: CloudEvent, flow: string) => string, port = 0): Promise<UnaryOnlyPlugin> {
  let calls = 0;
  const server = new Server();
  const handle = (call: ServerUnaryCall<HandleRequest, HandleResponse>, callback: sendUnaryData<HandleResponse>): void => {
    calls++;
    const message = answer(eventFromProto(call.request.event!), call.request.flow);
    callback(null, { status: HandleStatus.HANDLE_STATUS_OK, message, attributes: {} });
  };
  // The generated type asks for HandleStream too; leaving it out is the point.
  server.addService(PluginServiceService, { handle } as unknown as Parameters<Server['addService']>[1]);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port: bound,
    get calls() {
      return calls;
    },
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
