import type { Logger } from 'pino';
import type { ActionPlugin } from './action-plugin.js';

/** Stands in for a plugin under `--dry-run`: logs what the plugin would get, calls nothing. */
export function dryRunPlugin(plugin: ActionPlugin, logger: Logger): ActionPlugin {
  return {
    ...plugin,
    invoke: async (event, call) => {
      logger.info({ plugin: plugin.name, flow: call.flow, attempt: call.attempt, event, dryRun: true }, `dry run: would call plugin ${plugin.name}`);
      return { status: 'skipped', message: 'dry run', attributes: {} };
    },
    close: () => plugin.close(),
  };
}
