import { HandleStatus, type HandleResponse } from './gen/hollowtrees/plugin/v1/plugin.js';

/** What a plugin answered. */
export interface PluginResponse {
  /** `ok`: the plugin acted; `skipped`: it had nothing to do. */
  status: 'ok' | 'skipped';
  /** Its summary; empty when it gave none. */
  message: string;
  /** Labels it adds for the next plugin of the run; empty when it gave none. */
  attributes: Record<string, string>;
}

/** A plugin's answer off the wire, as either transport received it. */
export function fromResponse({ status, message, attributes }: HandleResponse): PluginResponse {
  return { status: status === HandleStatus.HANDLE_STATUS_SKIPPED ? 'skipped' : 'ok', message, attributes };
}
