/**
 * The floor: a raw grpc-js unary call over loopback, client and server in one
 * process, a 600-byte payload, no protobuf work (identity serialisers). Nothing
 * built on grpc-js can answer faster on this machine.
 */
import { Server, ServerCredentials, credentials, makeGenericClientConstructor, type sendUnaryData, type ServerUnaryCall, type ServiceDefinition } from '@grpc/grpc-js';
import { summarize, type Summary } from './stats.js';

const identity = (b: Buffer): Buffer => b;
const definition: ServiceDefinition = {
  echo: {
    path: '/bench.Floor/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

export interface FloorResult {
  latencyMs: Summary;
  /** Calls per second with 64 in flight. */
  callsPerSecond: number;
  payloadBytes: number;
}

type EchoClient = { echo(req: Buffer, cb: (err: Error | null, res?: Buffer) => void): void; close(): void };

/** Sequential round trips for latency, then 64 in flight for throughput. */
export async function measureGrpcFloor(samples: number, warmup: number): Promise<FloorResult> {
  const server = new Server();
  server.addService(definition, { echo: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => cb(null, Buffer.alloc(16)) });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const Client = makeGenericClientConstructor(definition, 'Floor');
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure()) as unknown as EchoClient;
  const payload = Buffer.alloc(600, 0x61);
  const call = (): Promise<void> => new Promise((resolve, reject) => client.echo(payload, (err) => (err ? reject(err) : resolve())));

  for (let i = 0; i < warmup; i++) await call();
  const latencies: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    await call();
    latencies.push(performance.now() - t0);
  }
  const total = 20_000;
  let issued = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (issued < total) {
        issued++;
        await call();
      }
    }),
  );
  const callsPerSecond = total / ((performance.now() - started) / 1000);
  client.close();
  server.forceShutdown();
  return { latencyMs: summarize(latencies), callsPerSecond, payloadBytes: payload.length };
}
