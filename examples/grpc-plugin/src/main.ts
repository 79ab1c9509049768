#!/usr/bin/env node
import { integerFlag, parseFlags, serve, UsageError } from '@hollowtrees/grpcplugin';
import { ExampleHandler } from './example-handler.js';
import { WebhookHandler } from './webhook-handler.js';

const NAME = 'hollowtrees-example-plugin';

/** --port, else $PORT, else 9000. A bad $PORT is named as such: a unit or container setting it passed no --port to look for. */
function portOf(flag: string | undefined, env: string | undefined): number {
  if (flag !== undefined || env === undefined) return integerFlag('port', flag, 9000, 0, 65535);
  try {
    return integerFlag('port', env, 9000, 0, 65535);
  } catch (err) {
    throw err instanceof UsageError ? new UsageError(err.message.replace('--port', 'PORT (environment)')) : err;
  }
}

/** The handlers `--handler` picks from. */
const HANDLERS = { example: () => new ExampleHandler(), webhook: () => new WebhookHandler() };

let port: number;
let host: string;
let handler: keyof typeof HANDLERS;
try {
  // The SDK's flag parser refuses an unknown flag or argument, as the shipped plugins do.
  const values = parseFlags(process.argv.slice(2), { port: { type: 'string' }, host: { type: 'string' }, handler: { type: 'string' } });
  port = portOf(values.port, process.env.PORT || undefined);
  host = values.host ?? '127.0.0.1';
  const named = values.handler ?? 'example';
  if (!Object.hasOwn(HANDLERS, named)) throw new UsageError(`--handler must be one of ${Object.keys(HANDLERS).join(', ')}, got ${JSON.stringify(named)}`);
  handler = named as keyof typeof HANDLERS;
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`${NAME}: ${err.message}\nUsage: main.js [--port PORT (default $PORT or 9000)] [--host HOST (default 127.0.0.1)] [--handler example|webhook]\n`);
  process.exit(2);
}

const server = await serve(port, HANDLERS[handler](), { host, handleSignals: true });
// Printed so a script that starts the plugin on port 0 can find it.
process.stdout.write(`${JSON.stringify({ msg: 'example plugin listening', address: `${host}:${server.port}` })}\n`);
