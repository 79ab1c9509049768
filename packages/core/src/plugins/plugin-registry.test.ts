import { serve } from '@hollowtrees/grpcplugin';
import { serveUnaryOnly } from '@hollowtrees/grpcplugin/testing';
import { startTcpRelay } from '@hollowtrees/testkit';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load-config.js';
import type { ActionPlugin } from './action-plugin.js';
import { buildPlugins } from './plugin-registry.js';
import { grpcActionPlugin } from './grpc-action-plugin.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const event = { id: 'e1', source: 's', specversion: '1.0', type: 't', data: { labels: { node: 'n1' } } };

/** Core's plugins as built from a configuration file with one gRPC plugin `p` (`extra`: more of its settings), and the lines logged meanwhile. */
function pluginsFrom(port: number, extra = ''): { plugin: ActionPlugin; lines: Array<Record<string, unknown>> } {
  const yaml = `plugins:\n  p:\n    type: grpc\n    address: 127.0.0.1:${port}\n${extra}flows:\n  f:\n    allowedEvents: [t]\n    plugins: [p]\n`;
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const plugins = buildPlugins(parseConfig(yaml, 'test.yaml').config, new Map(), logger, grpcActionPlugin);
  cleanups.push(() => Promise.all([...plugins.values()].map((p) => p.close?.())));
  return { plugin: plugins.get('p')!, lines };
}

describe('gRPC plugins built from the configuration', () => {
  it('a plugin that serves only the unary Handle (no SDK) is called through it; core logs the fallback once, naming the plugin', async () => {
    const plugin = await serveUnaryOnly((e, flow) => `handled ${e.id} in ${flow}`);
    cleanups.push(() => plugin.close());
    const { plugin: p, lines } = pluginsFrom(plugin.port);
    const answers = await Promise.all([1, 2, 3].map((attempt) => p.invoke(event, { flow: 'f', attempt, config: {} })));
    expect(answers.map((a) => a.message)).toEqual(['handled e1 in f', 'handled e1 in f', 'handled e1 in f']);
    expect(plugin.calls).toBe(3);
    const fallbacks = lines.filter((l) => String(l['msg']).includes('does not serve HandleStream'));
    expect(fallbacks).toEqual([expect.objectContaining({ level: 40, plugin: 'p', address: `127.0.0.1:${plugin.port}` })]);
  });

  it('transport: stream forces the stream (a unary-only plugin then fails with UNIMPLEMENTED); transport: unary forces unary calls', async () => {
    const plugin = await serveUnaryOnly(() => 'unary');
    cleanups.push(() => plugin.close());
    await expect(pluginsFrom(plugin.port, '    transport: stream\n').plugin.invoke(event, { flow: 'f', attempt: 1, config: {} })).rejects.toMatchObject({ code: 12 });
    const unary = pluginsFrom(plugin.port, '    transport: unary\n');
    expect((await unary.plugin.invoke(event, { flow: 'f', attempt: 1, config: {} })).message).toBe('unary');
    expect(unary.lines).toEqual([]);
  });

  it('an SDK plugin is served over the stream by default, with nothing logged', async () => {
    const server = await serve(0, { handle: (e) => ({ message: `sdk ${e.id}` }) });
    cleanups.push(() => server.close());
    const { plugin, lines } = pluginsFrom(server.port);
    expect((await plugin.invoke(event, { flow: 'f', attempt: 1, config: {} })).message).toBe('sdk e1');
    expect(lines).toEqual([]);
  });

  it('keepalive: a connection dropped silently on the way fails the call on it with UNAVAILABLE (retried by the flow) after time + timeout, not at its deadline; keepalive: false waits out the deadline', async () => {
    const server = await serve(0, { handle: (e) => ({ message: `sdk ${e.id}` }) });
    cleanups.push(() => server.close());
    const relay = await startTcpRelay(server.port);
    cleanups.push(() => relay.close());
    const call = { flow: 'f', attempt: 1, config: {} };
    const pinging = pluginsFrom(relay.port, '    timeout: 60s\n    keepalive: { time: 1s, timeout: 1s }\n').plugin;
    const silent = pluginsFrom(relay.port, '    timeout: 1s\n    keepalive: false\n').plugin;
    await Promise.all([pinging.invoke(event, call), silent.invoke(event, call)]);
    relay.blackholeOpenConnections();
    await expect(pinging.invoke(event, call)).rejects.toMatchObject({ code: 14 });
    await expect(silent.invoke(event, call)).rejects.toMatchObject({ code: 4 });
    expect((await pinging.invoke(event, call)).message).toBe('sdk e1');
  });

  it('refuses keepalive settings that are not false or { time, timeout } of 1s to 24h, naming the path', () => {
    expect(() => pluginsFrom(1, '    keepalive: true\n')).toThrow(/plugins\.p\.keepalive: expected false \(no pings\) or \{ time, timeout \}/);
    expect(() => pluginsFrom(1, '    keepalive: { time: 500ms }\n')).toThrow(/plugins\.p\.keepalive\.time: expected a duration from 1s to 24h/);
    expect(() => pluginsFrom(1, '    keepalive: { every: 5s }\n')).toThrow(/plugins\.p\.keepalive\.every: unknown field/);
  });

  it('refuses a transport other than auto, stream or unary, naming the path', () => {
    expect(() => pluginsFrom(1, '    transport: http\n')).toThrow(/plugins\.p\.transport.*expected auto, stream or unary/s);
  });
});
