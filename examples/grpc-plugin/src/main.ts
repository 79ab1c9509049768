#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { serve } from '@hollowtrees/grpcplugin';
import { ExampleHandler } from './example-handler.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '9000' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});

const server = await serve(Number(values.port), new ExampleHandler(), { host: values.host, handleSignals: true });
// Printed so a script that starts the plugin on port 0 can find it.
process.stdout.write(`${JSON.stringify({ msg: 'example plugin listening', address: `${values.host}:${server.port}` })}\n`);
