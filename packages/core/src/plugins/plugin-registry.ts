import type { ClientTlsOptions } from '@hollowtrees/grpcplugin';
import type { Logger } from 'pino';
import { ConfigError } from '../config/config-error.js';
import { readNamedFile } from '../config/read-named-file.js';
import type { Config, GrpcPluginConfig, PluginConfig } from '../config/schema.js';
import type { ActionPlugin } from './action-plugin.js';
import { grpcActionPlugin } from './grpc-action-plugin.js';
import { handlerActionPlugin } from './handler-action-plugin.js';
import { LogHandler } from './log-handler.js';

const BUILTIN_LOG: PluginConfig = { type: 'log', timeout: 5_000, retry: { attempts: 1, initialBackoff: 0, maxBackoff: 0, multiplier: 1 } };

function readTls(name: string, tls: NonNullable<GrpcPluginConfig['tls']>, file: string): ClientTlsOptions {
  const read = (field: 'ca' | 'cert' | 'key'): Buffer | undefined => {
    const path = tls[field];
    return path === undefined ? undefined : readNamedFile(path, file, `plugins.${name}.tls.${field}`);
  };
  const [ca, cert, key] = [read('ca'), read('cert'), read('key')];
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError(file, [{ path: `plugins.${name}.tls`, message: 'cert and key must be given together' }]);
  }
  return { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(tls.serverName ? { serverName: tls.serverName } : {}) };
}

/** Builds every plugin of the configuration, plus the built-in `log` unless the file redefines it. */
export function buildPlugins(config: Config, file: string, logger: Logger): Map<string, ActionPlugin> {
  const plugins = new Map<string, ActionPlugin>();
  const entries: Array<[string, PluginConfig]> = Object.entries({ log: BUILTIN_LOG, ...config.plugins });
  try {
    addPlugins(plugins, entries, file, logger);
  } catch (err) {
    // A bad TLS file of one plugin must not leak the channels already opened for the others.
    for (const plugin of plugins.values()) void plugin.close();
    throw err;
  }
  return plugins;
}

function addPlugins(plugins: Map<string, ActionPlugin>, entries: Array<[string, PluginConfig]>, file: string, logger: Logger): void {
  for (const [name, pc] of entries) {
    if (pc.type === 'log') {
      plugins.set(name, handlerActionPlugin(name, new LogHandler(logger), pc.timeout, pc.retry));
    } else {
      plugins.set(name, grpcActionPlugin({ name, address: pc.address, timeoutMs: pc.timeout, retry: pc.retry, ...(pc.tls ? { tls: readTls(name, pc.tls, file) } : {}) }));
    }
  }
}
