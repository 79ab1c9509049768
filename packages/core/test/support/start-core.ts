import { Writable } from 'node:stream';
import { startHollowtrees, type Hollowtrees, type StartOptions } from '../../src/app.js';
import { parseConfig } from '../../src/config/load-config.js';
import { createLogger } from '../../src/logger.js';

/** Core started for a test, with its log lines captured. */
export interface TestCore extends Hollowtrees {
  logs: Array<Record<string, unknown>>;
  /** POSTs a JSON body to a receiver path. */
  post(path: string, body: unknown): Promise<{ status: number; json: unknown }>;
}

/** Starts core in-process on a config text, listening on an ephemeral loopback port. */
export async function startTestCore(yaml: string, options: StartOptions = {}): Promise<TestCore> {
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger('debug', sink);
  const app = await startHollowtrees(parseConfig(yaml, 'test.yaml', process.env), { listen: '127.0.0.1:0', logger, ...options });
  return Object.assign(app, {
    logs,
    async post(path: string, body: unknown) {
      const res = await fetch(`${app.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
      const text = await res.text();
      let json: unknown = text;
      try {
        json = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: res.status, json };
    },
  });
}

/** Configuration text of one flow `spot`: SpotInstanceTerminating alerts, one group per instance, into the gRPC plugin `rec` at `address` (`settings`: its other settings, e.g. `transport: unary`). */
export function spotFlowConfig(address: string, settings = ''): string {
  return `plugins:
  rec: { type: grpc, ${settings ? `${settings}, ` : ''}address: "${address}" }
flows:
  spot:
    allowedEvents: [prometheus.server.alert.SpotInstanceTerminating]
    groupBy: [instance_id]
    plugins: [rec]
`;
}
