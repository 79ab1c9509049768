import { parseConfig, type LoadedConfig } from './load-config.js';

/**
 * What `npx hollowtrees` runs without a config file: the receiver on
 * 127.0.0.1:9092 and one demo flow that logs every firing Prometheus alert.
 */
export const DEFAULT_CONFIG_YAML = `# Hollowtrees embedded default configuration
server:
  listen: 127.0.0.1:9092
log:
  level: info
flows:
  demo:
    description: Logs every firing Prometheus alert through the built-in log plugin
    allowedEvents:
      - prometheus.server.alert.*
    groupBy: [alertname, instance_id]
    cooldown: 1m
    plugins: [log]
`;

/** The embedded default, validated like any file. */
export function defaultConfig(): LoadedConfig {
  return parseConfig(DEFAULT_CONFIG_YAML, '<embedded default>', {});
}
