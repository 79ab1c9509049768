import type { CloudEvent } from '@hollowtrees/grpcplugin';

/** An event whose type ends in `.resolved` ends the condition another event started. */
export const isResolution = (event: CloudEvent): boolean => event.type.endsWith('.resolved');
