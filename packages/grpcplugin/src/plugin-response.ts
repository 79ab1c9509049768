import { HandleStatus, type HandleResponse } from './gen/hollowtrees/plugin/v1/plugin.js';

/** What a plugin answered. */
export interface PluginResponse {
  status: 'ok' | 'skipped';
  message: string;
  attributes: Record<string, string>;
}

/** A plugin's answer off the wire, as either transport received it. */
export function fromResponse({ status, message, attributes }: HandleResponse): PluginResponse {
  return { status: status === HandleStatus.HANDLE_STATUS_SKIPPED ? 'skipped' : 'ok', message, attributes };
}
