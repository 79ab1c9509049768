#!/usr/bin/env node
import { integerFlag, parseFlags, serve, UsageError } from '@hollowtrees/grpcplugin';
import { ExampleHandler } from './example-handler.js';

const NAME = 'hollowtrees-example-plugin';

let port: number;
let host: string;
try {
  // The SDK's flag parser refuses an unknown flag or argument, as the shipped plugins do.
  const values = parseFlags(process.argv.slice(2), { port: { type: 'string' }, host: { type: 'string' } });
  port = integerFlag('port', values.port ?? (process.env.PORT || undefined), 9000, 0, 65535);
  host = values.host ?? '127.0.0.1';
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`${NAME}: ${err.message}\nUsage: main.js [--port PORT (default $PORT or 9000)] [--host HOST (default 127.0.0.1)]\n`);
  process.exit(2);
}

const server = await serve(port, new ExampleHandler(), { host, handleSignals: true });
// Printed so a script that starts the plugin on port 0 can find it.
process.stdout.write(`${JSON.stringify({ msg: 'example plugin listening', address: `${host}:${server.port}` })}\n`);
