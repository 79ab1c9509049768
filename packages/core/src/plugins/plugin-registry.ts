import type { Logger } from 'pino';
import { pluginLogger, systemClock, type Clock } from '@hollowtrees/grpcplugin/without-grpc';
import type { ConfigFiles } from '../config/config-files.js';
import type { Config, PluginConfig } from '../config/schema.js';
import type { ActionPlugin } from './action-plugin.js';
import type { GrpcPluginFactory } from './grpc-plugin-factory.js';
import { handlerActionPlugin } from './handler-action-plugin.js';
import { LogHandler } from './log-handler.js';

const BUILTIN_LOG: PluginConfig = { type: 'log', timeout: 5_000, retry: { attempts: 1, initialBackoff: 0, maxBackoff: 0, multiplier: 1 } };

/**
 * Builds every plugin of the configuration, plus the built-in `log` unless the file redefines it.
 * `tls`: each gRPC plugin's TLS material, as `readConfigFiles` read it. `grpcPlugin`: what `grpcPluginFactory`
 * answered for this configuration (only a configuration of log plugins may go without).
 */
export function buildPlugins(config: Config, tls: ConfigFiles['pluginTls'], logger: Logger, grpcPlugin: GrpcPluginFactory | undefined, clock: Clock = systemClock): Map<string, ActionPlugin> {
  const plugins = new Map<string, ActionPlugin>();
  for (const [name, pc] of Object.entries({ log: BUILTIN_LOG, ...config.plugins })) {
    if (pc.type === 'log') {
      plugins.set(name, handlerActionPlugin(name, new LogHandler(logger), pc.timeout, pc.retry, clock));
    } else {
      if (grpcPlugin === undefined) throw new Error(`plugin ${name}: a gRPC plugin is built only with the factory grpcPluginFactory loaded`);
      const pluginTls = tls.get(name);
      const keepalive = pc.keepalive && { timeMs: pc.keepalive.time, timeoutMs: pc.keepalive.timeout };
      const client = { transport: pc.transport, keepalive, logger: pluginLogger(logger.child({ plugin: name })) };
      plugins.set(name, grpcPlugin({ name, address: pc.address, timeoutMs: pc.timeout, retry: pc.retry, ...client, ...(pluginTls ? { tls: pluginTls } : {}) }));
    }
  }
  return plugins;
}
