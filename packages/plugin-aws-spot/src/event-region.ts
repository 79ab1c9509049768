import { Code, labelsOf, PluginError, type CloudEvent } from '@hollowtrees/grpcplugin';
import { isRegionName } from './region-name.js';

/**
 * The event's `labels.region`, or undefined when it is missing or empty (the
 * configured region applies then).
 * @throws PluginError INVALID_ARGUMENT, naming the label, for a value that
 * cannot be a region: the SDK would refuse it only once clients were built for
 * it (INTERNAL, without saying where it came from).
 */
export function regionLabelOf(event: CloudEvent): string | undefined {
  const region = labelsOf(event).region;
  if (region === undefined || region === '') return undefined;
  if (!isRegionName(region)) throw new PluginError(Code.InvalidArgument, `event ${event.id}: labels.region "${region}" is not an AWS region name`);
  return region;
}
